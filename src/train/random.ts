/**
 * Draws from a caller's seeded uniform generator (seedrandom's prng), shared by the augmentations:
 * uniform ranges, integers, and standard normals (Box-Muller).
 */

/** A uniform [0, 1) generator (seedrandom's prng). */
export type Rng = () => number;

/** Uniform in [a, b). */
export function uniform(rng: Rng, a: number, b: number): number {
  return a + (b - a) * rng();
}

/** An integer in [lo, hiInclusive]. */
export function randint(rng: Rng, lo: number, hiInclusive: number): number {
  return lo + Math.floor(rng() * (hiInclusive - lo + 1));
}

/** A standard normal draw (Box-Muller, two uniforms; 0 is kept off the log). */
export function standardNormal(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(rng() || 1e-12)) * Math.cos(2 * Math.PI * rng());
}
