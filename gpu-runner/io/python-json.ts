// Python's json module writes the non-standard tokens NaN, Infinity and -Infinity (e.g. diffusers'
// `lambda_min_clipped: -inf`), which JSON.parse rejects. This parser accepts them outside string literals.

const NON_FINITE_TOKEN = /"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g;
const SENTINELS: Record<string, string> = {
  Infinity: '"__py_json_inf__"',
  '-Infinity': '"__py_json_-inf__"',
  NaN: '"__py_json_nan__"',
};
const VALUES: Record<string, number> = {
  __py_json_inf__: Number.POSITIVE_INFINITY,
  '__py_json_-inf__': Number.NEGATIVE_INFINITY,
  __py_json_nan__: Number.NaN,
};

export function parsePythonJson(text: string): unknown {
  const standard = text.replace(NON_FINITE_TOKEN, (token) => SENTINELS[token] ?? token);
  return JSON.parse(standard, (_key, value: unknown) =>
    typeof value === 'string' && value in VALUES ? VALUES[value] : value,
  );
}
