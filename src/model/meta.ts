/**
 * What a model carries besides its weights: its config, class names, eval preprocessing and where
 * the weights came from. Stored in a model directory's model.json (src/io/model_dir.ts) and produced
 * by the converter, the trainer and the zoo.
 */
import { ConvNeXtConfig } from './configs';
import { PreprocessingInfo } from './preprocessing';

/** Where converted weights came from. */
export interface SourceInfo {
  /** Checkpoint file name (no directories). */
  file?: string;
  /** Container: torch-zip | torch-legacy | safetensors | trained. */
  format?: string;
  /** Key layout: official | timm | torchvision | hf. */
  layout?: string;
  /** Wrapper key unwrapped ('model', 'state_dict', ...), if any. */
  wrapper?: string | null;
  /** Zoo name (e.g. convnext_tiny.fb_in1k), if any. */
  tag?: string;
  [key: string]: unknown;
}

/** The ConvNeXt metadata stored in model.json's userDefinedMetadata.convnext. */
export interface ModelMeta {
  formatVersion: number;
  config: ConvNeXtConfig;
  source?: SourceInfo;
  /** Class names, index-aligned with the logits. */
  labels?: string[];
  preprocessing?: PreprocessingInfo;
  /** Storage dtype of the weights: float32, or float16 (--fp16). */
  storage?: 'float32' | 'float16';
}
