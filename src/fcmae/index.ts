/** FCMAE pretraining (ConvNeXt V2 masked autoencoder), dense-masked on our layers. */
export { FcmaeError } from '../errors';
export { FCMAE_PATCH, PatchMask, checkMask, randomMask, stageVisibleMaps, visibleCount, visibleMap } from './mask';
export { GrnStats, maskedGrn } from './masked_grn';
export { FcmaeEncoder } from './encoder';
export { DecoderOptions, FcmaeDecoder, decoderParamSpecs } from './decoder';
export { fcmaeLoss, normPixTarget, patchStats, patchify, unpatchify } from './loss';
export { FcmaeInit, fcmaeInitValue } from './init';
export { Fcmae, FcmaeOptions, FcmaeOutput } from './fcmae';
export { FcmaeWeights, fcmaeFromStateDict, fcmaeKind, fcmaeToOfficial, remapMinkowski } from '../../weights-converter/fcmae_layout';
export { fcmaeFromWeights, loadFcmaeCheckpoint } from './load';
export { PretrainEvent, PretrainOptions, PretrainRecord, PretrainReport, fcmaeFromRun, listImagesRecursive, pretrain } from './pretrain';
export { LoadFcmaeOptions, ReconstructResult, loadFcmae, reconstruct } from './reconstruct';
export { reconstructionGrid, reconstructionPanels } from './visualize';
export { writeFcmaeCheckpoint } from './torch_writer';
