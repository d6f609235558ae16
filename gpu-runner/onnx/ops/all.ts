// Importing this module fills the op table with every op the engine knows.
import './elementwise.ts';
import './shape-ops.ts';
import './reduce.ts';
import './linalg.ts';
import './conv.ts';
import './resize.ts';
import './normalization.ts';
