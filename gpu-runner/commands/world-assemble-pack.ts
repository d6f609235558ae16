// `npm run world:assemble-pack [-- --dir DIR]`: writes the world pack's shared parts (model_index.json, scheduler/,
// tokenizer/) and its model card (README.md, from the stages' records) into gpu-runner/world/pack, checks the 25 MB
// budget, and says which parts are still missing. Safe to rerun after every stage.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writePackScaffold } from '../world/packaging/assemble.ts';
import { modelCard } from '../world/packaging/model-card.ts';
import { assertPackWithinBudget, missingPackFiles, WORLD_PACK_DIR } from '../pack/world-pack.ts';

const { values } = parseArgs({ options: { dir: { type: 'string' } }, strict: true });
const dir = resolve(values.dir ?? WORLD_PACK_DIR);
writePackScaffold(dir);
writeFileSync(join(dir, 'README.md'), await modelCard(dir));
const bytes = assertPackWithinBudget(dir);
const missing = missingPackFiles(dir);
console.log(JSON.stringify({ dir, bytes, complete: missing.length === 0, missing }));
