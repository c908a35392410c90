/** The checkpoint readers' errors, defined with every other error class in src/errors.ts. */
export { CheckpointError, UnsafePickleError } from '../src/errors';
