// Compares what a checkpoint holds with what a model needs, name for name and shape for shape.
import { formatShape, type ParameterSpec, shapesEqual, type TensorShape } from '../inventory.ts';

export interface InventoryDiff {
  /** Needed by the model, absent from the checkpoint. */
  missing: string[];
  /** In the checkpoint, not used by the model. */
  unexpected: string[];
  mismatched: { name: string; expected: TensorShape; actual: TensorShape }[];
}

export function compareInventory(
  expected: readonly ParameterSpec[],
  actual: readonly { name: string; shape: TensorShape }[],
): InventoryDiff {
  const actualByName = new Map(actual.map((entry) => [entry.name, entry.shape]));
  const expectedNames = new Set(expected.map((spec) => spec.name));
  const missing: string[] = [];
  const mismatched: InventoryDiff['mismatched'] = [];
  for (const spec of expected) {
    const shape = actualByName.get(spec.name);
    if (shape === undefined) missing.push(spec.name);
    else if (!shapesEqual(shape, spec.shape)) mismatched.push({ name: spec.name, expected: spec.shape, actual: shape });
  }
  const unexpected = actual.map((entry) => entry.name).filter((name) => !expectedNames.has(name));
  return { missing, unexpected, mismatched };
}

export function isCleanDiff(diff: InventoryDiff): boolean {
  return diff.missing.length === 0 && diff.unexpected.length === 0 && diff.mismatched.length === 0;
}

const LISTED = 5;

/** One readable paragraph naming the first few missing, mis-shaped and unexpected tensors. */
export function describeDiff(diff: InventoryDiff): string {
  const parts: string[] = [];
  const list = (names: string[]) => names.slice(0, LISTED).join(', ') + (names.length > LISTED ? `, … (${names.length} in all)` : '');
  if (diff.missing.length > 0) parts.push(`missing tensor(s): ${list(diff.missing)}`);
  if (diff.mismatched.length > 0) {
    parts.push(
      `mis-shaped tensor(s): ${list(diff.mismatched.map((m) => `${m.name} is ${formatShape(m.actual)}, expected ${formatShape(m.expected)}`))}`,
    );
  }
  if (diff.unexpected.length > 0) parts.push(`unexpected tensor(s): ${list(diff.unexpected)}`);
  return parts.join('; ');
}
