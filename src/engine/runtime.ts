// Runs graphs on onnxruntime-node. The execution provider is a parameter;
// when the requested one cannot start we fall back to CPU and say why.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { Graph } from '../../kernels/graph';
import { writeFileAtomic } from '../util/atomic';
import type { Device } from './types';

/** A concrete execution provider: a Device other than 'auto'. */
export type Provider = Exclude<Device, 'auto'>;

export interface RuntimeOptions {
  /** Preferred provider; 'auto' tries cuda, then webgpu, then cpu. */
  device?: Device;
  /** Intra-op threads (default: onnxruntime's choice, one per core). */
  threads?: number;
  /** Write onnxruntime's per-op profile (chrome trace JSON, `aligner-profile_*.json`) in the working directory. */
  profile?: boolean;
  log?: (message: string) => void;
}

export interface SessionMemory {
  /**
   * onnxruntime's CPU arena (default on) keeps the largest memory a session's run
   * ever took until the session is released. Off for sessions that run rarely
   * with large transients (training), so the memory goes back after each run.
   */
  arena?: boolean;
}

export class Runtime {
  /** `dir` holds the weights file that the graphs' external data points at; graph files are written there too. */
  private constructor(
    readonly provider: Provider,
    private readonly opts: RuntimeOptions,
    private readonly dir: string,
  ) {}

  /** Picks the first provider that can run a trivial graph. */
  static async create(dir: string, opts: RuntimeOptions = {}): Promise<Runtime> {
    const wanted = opts.device ?? 'cpu';
    const order: Provider[] = wanted === 'auto' ? ['cuda', 'webgpu', 'cpu'] : wanted === 'cpu' ? ['cpu'] : [wanted, 'cpu'];
    for (const provider of order) {
      const problem = provider === 'cpu' ? null : await probe(provider);
      if (!problem) return new Runtime(provider, opts, dir);
      if (wanted !== 'auto' || provider !== 'cuda') {
        opts.log?.(`execution provider "${provider}" is not available (${problem}); falling back to CPU`);
      }
    }
    throw new Error('unreachable: the CPU provider always exists');
  }

  /**
   * A session for a serialised graph. onnxruntime resolves external data
   * relative to the model file (and memory-maps it), so the graph is written
   * beside the weights, named by its content.
   */
  async session(model: Uint8Array, name: string, memory: SessionMemory = {}): Promise<ort.InferenceSession> {
    const file = path.join(this.dir, `${name}-${createHash('sha256').update(model).digest('hex').slice(0, 12)}.onnx`);
    if (!fs.existsSync(file)) writeFileAtomic(file, model);
    return ort.InferenceSession.create(file, {
      executionProviders: [this.provider],
      graphOptimizationLevel: 'all',
      enableCpuMemArena: memory.arena ?? true,
      ...(this.opts.threads ? { intraOpNumThreads: this.opts.threads } : {}),
      enableProfiling: this.opts.profile ?? false,
      ...(this.opts.profile ? { profileFilePrefix: 'aligner-profile' } : {}),
    });
  }
}

async function probe(provider: Provider): Promise<string | null> {
  const backend = ort.listSupportedBackends().find((b) => b.name === provider);
  if (!backend) return 'not built into this onnxruntime-node';
  // CUDA ships as an add-on that onnxruntime-node's install script fetches; without it, say so
  // instead of letting onnxruntime log a failed library load.
  if (!backend.bundled && !fs.existsSync(path.join(bindingDir(), `libonnxruntime_providers_${provider}.so`))) {
    return `its add-on is not installed (see "Devices" in the README)`;
  }
  try {
    const s = await ort.InferenceSession.create(identityModel(), { executionProviders: [provider] });
    await s.release();
    return null;
  } catch (e) {
    // onnxruntime's messages start with a source location; the reason comes last.
    const line = (e as Error).message.split('\n')[0];
    const reason = line.search(/Failed to|not available|cannot|could not/i);
    return reason > 0 ? line.slice(reason) : line;
  }
}

function bindingDir(): string {
  return path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
}

function identityModel(): Uint8Array {
  const g = new Graph();
  g.output(g.input('x', 'float', [1]), 'y');
  return g.toModel('none.bin');
}
