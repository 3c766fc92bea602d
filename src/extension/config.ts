// Typed access to the extension's settings (SPEC §7).

import * as vscode from 'vscode';
import { GENERATION_DEFAULTS } from '../generate/defaults';
import { isDevice, type Device } from '../engine/types';
import type { GenerationParams, QuantizationSetting, TrainOptions } from '../protocol';
import { TRAIN_DEFAULTS } from '../train/defaults';

export const SECTION = 'aligner';

export function cfg(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

export function baseModelSetting(): string {
  return (cfg().get<string>('baseModel') ?? '').trim();
}

export function deviceSetting(): Device {
  const d = cfg().get<string>('device');
  return isDevice(d) ? d : 'auto';
}

export function quantizationSetting(): QuantizationSetting {
  const q = cfg().get<string>('quantization') ?? 'auto';
  return (['auto', 'f32', 'q8', 'q4'] as const).includes(q as QuantizationSetting) ? (q as QuantizationSetting) : 'auto';
}

export function adapterSetting(): string {
  return (cfg().get<string>('adapter') ?? '').trim();
}

export function trainingDefaults(): TrainOptions {
  const c = cfg();
  const tokens = c.get<number | string>('training.tokens', TRAIN_DEFAULTS.tokens);
  const steps = c.get<number>('training.maxSteps', 0);
  return {
    tokens: tokens === 'auto' || tokens === '' || tokens === 0 ? 'auto' : Number(tokens),
    startLayer: c.get<number>('training.startLayer', TRAIN_DEFAULTS.startLayer),
    epochs: c.get<number>('training.epochs', TRAIN_DEFAULTS.epochs),
    lr: c.get<number>('training.learningRate', TRAIN_DEFAULTS.lr.sft),
    steps: steps > 0 ? steps : undefined,
  };
}

export function generationDefaults(): GenerationParams {
  const c = cfg();
  return {
    maxNewTokens: c.get<number>('generation.maxNewTokens', GENERATION_DEFAULTS.maxNewTokens),
    temperature: c.get<number>('generation.temperature', GENERATION_DEFAULTS.temperature),
    topP: c.get<number>('generation.topP', GENERATION_DEFAULTS.topP),
  };
}
