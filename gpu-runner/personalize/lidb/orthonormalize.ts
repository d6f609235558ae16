/**
 * Modified Gram–Schmidt on the rows of a row-major float64 matrix, in place, in the exact order LIDB.md specifies
 * (sequential sums from index 0, no fused multiply-add), so other languages reproduce the bits.
 *
 * Row i: for j = 0 … i−1: d = Σ_k q_j[k]·v[k]; v[k] = v[k] − d·q_j[k]. Then n = sqrt(Σ_k v[k]·v[k]); q_i[k] = v[k] / n.
 * The result is the Q of the QR factorization of the transpose with a positive diagonal of R (each q_i points the same
 * way as the component of row i orthogonal to the earlier rows), which fixes the signs.
 */
export function orthonormalizeRows(matrix: Float64Array, rows: number, cols: number): Float64Array {
  if (rows > cols) throw new RangeError(`cannot orthonormalize ${rows} rows of length ${cols}: needs rows ≤ cols`);
  if (matrix.length !== rows * cols) throw new RangeError(`matrix has ${matrix.length} values, expected ${rows}×${cols}`);
  for (let i = 0; i < rows; i++) {
    // Views keep the inner loops on plain typed-array indexing (same operations, same order).
    const v = matrix.subarray(i * cols, (i + 1) * cols);
    for (let j = 0; j < i; j++) {
      const q = matrix.subarray(j * cols, (j + 1) * cols);
      let d = 0;
      for (let k = 0; k < cols; k++) d += q[k]! * v[k]!;
      for (let k = 0; k < cols; k++) v[k] = v[k]! - d * q[k]!;
    }
    let sumSquares = 0;
    for (let k = 0; k < cols; k++) sumSquares += v[k]! * v[k]!;
    const norm = Math.sqrt(sumSquares);
    // A Gaussian matrix is rank-deficient with probability 0; a zero row means a broken generator, not bad luck.
    if (!(norm > 0)) throw new Error(`orthonormalizeRows: row ${i} is linearly dependent on the rows before it`);
    for (let k = 0; k < cols; k++) v[k] = v[k]! / norm;
  }
  return matrix;
}
