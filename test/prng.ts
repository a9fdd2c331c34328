/** mulberry32, the examples' seeded PRNG (Math.random cannot be seeded), so a failing seed reproduces. */
export { seededRandom as prng } from "../examples/telemetry-model.js";
