export * from './configs';
export { ConvNeXt, ForwardOptions, parameterSpecs } from './convnext';
export { Init, ParamInfo, ParamSpec, ParamStore } from '../layers/params';
export { ModelMeta, SourceInfo } from './meta';
export * from './preprocessing';
