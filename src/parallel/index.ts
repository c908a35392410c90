/** Multi-core inference: model replicas in worker_threads sharing one copy of the weights. */
export { InferencePool, PoolOptions, WORKER_SCRIPT } from './pool';
export { RunKind, WorkerMemory } from './protocol';
export { SharedParam, SharedWeights, WeightsData, WeightsSource, shareWeights, shareWeightsAsync } from './shared_weights';
