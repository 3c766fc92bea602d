#!/usr/bin/python3
"""PyTorch twin of issue 11's style protocol, to check `npm run stylebench` against an
independent implementation (issue 11, build item 2).

Trains an Aligner adapter (SPEC section 2; the model and forward pass of torch_ref.py) on the
first --train lines of stories-style/{style}.train.jsonl the way Hugging Face TRL's SFTTrainer
would: llama2.c's own tokenizer (tok512.bin, its encode algorithm, not tokenizer.json), BOS + text
+ end token 1 (llama2.c stories end with BOS), right padding, token-mean cross-entropy per batch,
AdamW (decoupled weight decay on prefix and gates), transformers' cosine schedule with warm-up,
gradient clipping at 1. Then the validation NLL (end token included) and 100 samples at T 0.8,
top-p 0.9 from "Once upon a time" (transformers' TopPLogitsWarper and torch.multinomial),
stopping at id 1 or 2, scored by the README's adherence rule (ported to Python here).

Switches that make one piece behave as our trainer does, for a controlled comparison:
  --batching bucket   our batch order (src/data/batches.ts: mulberry32 shuffle, length-sorted
                      windows of 50 batches, shuffled batches) instead of a random permutation
  --warmup-start ours our warm-up (peak*(s+1)/warmup, src/train/schedule.ts) instead of
                      transformers' peak*s/warmup (whose first step has rate 0)
  --init ours         our prefix init (mulberry32 Box-Muller, src/adapter/new.ts) instead of torch.randn
  --init-file F       start from an adapter .safetensors (prefix, gates) instead
  --adapter F         skip training: sample and score this adapter (e.g. one our CLI wrote)
  --save F            write the trained prefix/gates as JSON, for sampling with our engine

  /usr/bin/python3 test/bench/style_ref.py --style shout --tokens 10 --lr 0.1 --seed 0 [--threads 1]
  npm run stylebench -- --styles shout --rows n10 --seeds 0,1,2 --torch    # ours and this, side by side
The training flags are named as `aligner train`'s, so stylebench passes a row's flags on unchanged.
Prints one JSON line on stdout; progress on stderr.
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see torch_ref.py

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_ref import Llama, load_safetensors, mulberry32  # noqa: E402

SHARED = os.path.join(HERE, "..", "..", "..", "shared")
MODEL = os.path.join(SHARED, "models", "stories260K")
STYLES = os.path.join(SHARED, "datasets", "stories-style")
BOS, EOS = 1, 2


def log(*a):
    print("[style_ref]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- llama2.c tokenizer (run.c's encode/decode)

class Tok512:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        (self.max_len,) = struct.unpack_from("<i", data, 0)
        at = 4
        self.pieces, self.scores = [], []
        while at < len(data):
            score, n = struct.unpack_from("<fi", data, at)
            at += 8
            self.pieces.append(data[at:at + n])
            self.scores.append(score)
            at += n
        self.index = {p: i for i, p in enumerate(self.pieces)}

    def encode(self, text):
        """BOS, the dummy-prefix space, code points (byte fallback +3), then best-score merges."""
        ids = [BOS]
        if text:
            ids.append(self.index[b" "])
        for ch in text:
            b = ch.encode("utf-8")
            if b in self.index:
                ids.append(self.index[b])
            else:
                ids.extend(x + 3 for x in b)
        while True:
            best, best_id, at = -1e10, -1, -1
            for i in range(1, len(ids) - 1):  # never merge into BOS
                j = self.index.get(self.pieces[ids[i]] + self.pieces[ids[i + 1]])
                if j is not None and self.scores[j] > best:
                    best, best_id, at = self.scores[j], j, i
            if at < 0:
                return ids
            ids[at:at + 2] = [best_id]

    def decode(self, ids):
        out = bytearray()
        prev = BOS
        for t in ids:
            if t in (BOS, EOS):
                prev = t
                continue
            p = self.pieces[t]
            if prev == BOS and p.startswith(b" "):
                p = p[1:]
            m = re.fullmatch(rb"<0x([0-9A-F]{2})>", p)
            out += bytes([int(m.group(1), 16)]) if m else p
            prev = t
        return out.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- adherence (stories-style README)

TITLE = re.compile(r"(?:^|[^A-Za-z])(?:Mr|Mrs|Ms|Dr)$")
NAMES = ("Lily Timmy Tim Max Tom Spot Sue Amy Jack Tommy Benny Bob Ben Sally Lucy Billy Daisy Tweety Fluffy Mia "
         "Fin Sam Kitty Anna Fred Whiskers Bella Bobby Bobo Sammy Andy Joe Mittens Ducky Ellie Pinky Polly Remy").split()


def complete_sentences(text):
    out = []
    for par in text.split("\n"):
        quote, start, i = False, 0, 0
        while i < len(par):
            c = par[i]
            if c == '"':
                quote = not quote
                i += 1
                continue
            if c not in ".!?":
                i += 1
                continue
            end = i
            while end < len(par) and par[end] in ".!?":
                end += 1
            title = end - i == 1 and c == "." and TITLE.search(par[:i]) is not None
            if not title and quote and end < len(par) and par[end] == '"':
                quote = False
                end += 1
            rest = par[end:]
            if not title and not quote and (re.fullmatch(r" *", rest) or re.match(r" +[A-Z\"]", rest)):
                out.append(par[start:end].strip())
                start = end
            i = end
        tail = par[start:].strip()
        if tail and re.search(r"[.!?]\"?$", tail):
            out.append(tail)
    return out


def bang_share(text):
    s = complete_sentences(text)
    return sum(re.sub(r'"$', "", x).endswith("!") for x in s) / len(s) if s else 0.0


def adherence(style, samples):
    if style == "zoe":
        word = lambda w: re.compile(r"(?<![A-Za-z0-9_])" + w + r"(?![A-Za-z0-9_])")  # noqa: E731
        names = [word(n) for n in NAMES]
        ok = [word("Zoe").search(s) and not any(r.search(s) for r in names) for s in samples]
        return {"adherence": sum(map(bool, ok)) / len(samples)}
    if style == "moral":
        return {"adherence": sum("The moral of the story is" in s for s in samples) / len(samples)}
    shares = [bang_share(s) for s in samples]
    return {"adherence": sum(x > 0.8 for x in shares) / len(samples), "meanBang": sum(shares) / len(shares)}


# ---------------------------------------------------------------- data, batches, init

def read_texts(path, limit=None):
    with open(path) as f:
        lines = [json.loads(line)["text"] for line in f if line.strip()]
    return lines[:limit] if limit else lines


class JsRng:
    """src/util/random.ts: mulberry32 with int(), Fisher-Yates shuffle and Box-Muller normal()."""

    def __init__(self, seed):
        self.next = mulberry32(seed)
        self.spare = None

    def int(self, n):
        return int(math.floor(self.next() * n))

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.int(i + 1)
            items[i], items[j] = items[j], items[i]
        return items

    def normal(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        u1 = 1 - self.next()
        u2 = self.next()
        r = math.sqrt(-2 * math.log(u1))
        self.spare = r * math.sin(2 * math.pi * u2)
        return r * math.cos(2 * math.pi * u2)


def batch_order(lengths, batch, seed, kind, gen):
    n = len(lengths)
    if kind == "random":  # transformers' RandomSampler: one permutation per epoch
        order = torch.randperm(n, generator=gen).tolist()
        return [order[i:i + batch] for i in range(0, n, batch)]
    rng = JsRng(seed)  # src/data/batches.ts batchOrder
    order = rng.shuffle(list(range(n)))
    out = []
    win = batch * 50
    for w in range(0, n, win):
        window = sorted(order[w:w + win], key=lambda i: (lengths[i], i))
        out += [window[i:i + batch] for i in range(0, len(window), batch)]
    return rng.shuffle(out)


def pack(seqs):
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    labels = torch.full((len(seqs), T), -100, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        labels[b, :len(s) - 1] = torch.tensor(s[1:])  # position t predicts token t+1
    return ids, labels


def batch_nll(m, ad, seqs):
    ids, labels = pack(seqs)
    logits = m.forward(ids, ad)
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100, reduction="sum"), int(
        (labels != -100).sum())


def init_adapter(cfg, args):
    if args.init_file:
        w = load_safetensors(args.init_file)
        return w["prefix"].clone(), w["gates"].clone()
    n = args.tokens * cfg.hidden
    if args.init == "ours":
        r = JsRng(args.seed)
        prefix = torch.tensor([r.normal() for _ in range(n)], dtype=torch.float32).view(args.tokens, cfg.hidden)
    else:
        prefix = torch.randn(args.tokens, cfg.hidden, generator=torch.Generator().manual_seed(args.seed))
    return prefix, torch.zeros(cfg.layers - args.start_layer, cfg.heads)


def lr_at(s, args, total):
    if s < args.warmup:
        return args.lr * ((s + 1) if args.warmup_start == "ours" else s) / args.warmup
    progress = (s - args.warmup) / max(1, total - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train(m, tok, args):
    cfg = m.cfg
    end = [args.end_id] if args.end_id >= 0 else []
    train_seqs = [tok.encode(t) + end for t in read_texts(os.path.join(STYLES, f"{args.style}.train.jsonl"), args.train)]
    prefix, gates = init_adapter(cfg, args)
    prefix.requires_grad_(True)
    gates.requires_grad_(True)
    ad = {"prefix": prefix, "gates": gates, "start_layer": args.start_layer}
    groups = [{"params": [prefix], "weight_decay": args.weight_decay},
              {"params": [gates], "weight_decay": args.weight_decay if args.decay_gates else 0.0}]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    lengths = [len(s) for s in train_seqs]
    per_epoch = math.ceil(len(train_seqs) / args.batch)
    total = per_epoch * args.epochs
    step, losses, first = 0, [], None
    for e in range(args.epochs):
        for group in batch_order(lengths, args.batch, args.seed + e, args.batching, gen):
            rate = lr_at(step, args, total)
            for g in opt.param_groups:
                g["lr"] = rate
            opt.zero_grad(set_to_none=True)
            nll, n = batch_nll(m, ad, [train_seqs[i] for i in group])
            loss = nll / n
            loss.backward()
            if first is None:
                first = {"loss": float(loss), "grad_prefix_norm": float(prefix.grad.norm()),
                         "grad_gates_norm": float(gates.grad.norm())}
            torch.nn.utils.clip_grad_norm_([prefix, gates], args.clip)
            opt.step()
            losses.append(float(loss))
            step += 1
            if step % 10 == 0:
                log(f"step {step}/{total} loss {float(loss):.4f} lr {rate:.4g}")
    return prefix.detach(), gates.detach(), {"first_step": first, "losses": [round(x, 4) for x in losses]}


@torch.no_grad()
def val_nll(m, tok, ad, args):
    end = [args.end_id] if args.end_id >= 0 else []
    seqs = [tok.encode(t) + end for t in read_texts(os.path.join(STYLES, f"{args.style}.val.jsonl"))]
    total, count = 0.0, 0
    for i in range(0, len(seqs), 16):
        nll, n = batch_nll(m, ad, seqs[i:i + 16])
        total += float(nll)
        count += n
    return total / count


@torch.no_grad()
def sample(m, tok, ad, args):
    """Rows decode together through the KV cache; a row stops at id 1 or 2, at the context end or after
    args.max_new_tokens (None: no limit)."""
    cfg = m.cfg
    prompt = tok.encode("Once upon a time")
    gen = torch.Generator().manual_seed(args.sample_seed)
    pkv = m.prefix_kv(ad) if ad else None
    texts = []
    for first in range(0, args.samples, 50):
        B = min(50, args.samples - first)
        cache = [None] * cfg.layers
        logits = m.forward(torch.tensor([prompt] * B), ad, cache=cache, pkv=pkv, last_only=True)[:, -1]
        out = [[] for _ in range(B)]
        done = [False] * B
        for _ in range(min(cfg.max_pos - len(prompt), args.max_new_tokens or cfg.max_pos)):
            z = logits / args.temperature
            srt, idx = torch.sort(z, descending=False)  # TopPLogitsWarper
            cum = srt.softmax(-1).cumsum(-1)
            drop = cum <= 1 - args.top_p
            drop[:, -1] = False
            z = z.scatter(1, idx, srt.masked_fill(drop, -math.inf))
            nxt = torch.multinomial(z.softmax(-1), 1, generator=gen)[:, 0]
            for b in range(B):
                if not done[b]:
                    t = int(nxt[b])
                    if t in (BOS, EOS):
                        done[b] = True
                    else:
                        out[b].append(t)
            if all(done):
                break
            logits = m.forward(nxt[:, None], ad, cache=cache, pkv=pkv)[:, -1]
        texts += [tok.decode(prompt + o) for o in out]
    return texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", default="shout", choices=["shout", "zoe", "moral"])
    ap.add_argument("--tokens", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-layer", type=int, default=2)
    ap.add_argument("--train", type=int, default=800)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--weight-decay", type=float, default=0.02)
    ap.add_argument("--decay-gates", type=int, default=1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--end-id", type=int, default=BOS, help="appended to every text; -1: none")
    ap.add_argument("--batching", default="random", choices=["random", "bucket"])
    ap.add_argument("--schedule", default="cosine", choices=["cosine"])
    ap.add_argument("--warmup-start", default="hf", choices=["hf", "ours"])
    ap.add_argument("--init", default="torch", choices=["torch", "ours"])
    ap.add_argument("--init-file")
    ap.add_argument("--adapter", help="sample and score this adapter instead of training")
    ap.add_argument("--save", help="write the trained prefix/gates here (JSON)")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--sample-seed", type=int, default=None, help="default: 900001 + 1000*seed")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: up to the context")
    ap.add_argument("--samples-out", help="write the samples here (JSON list)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.sample_seed is None:
        args.sample_seed = 900001 + 1000 * args.seed
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    m = Llama(MODEL)
    tok = Tok512(os.path.join(MODEL, "llama2c", "tok512.bin"))
    t0 = time.time()
    res = {"bench": "style_ref", "style": args.style, "seed": args.seed, "tokens": args.tokens, "lr": args.lr,
           "batching": args.batching, "warmup_start": args.warmup_start, "init": args.init_file or args.init,
           "decay_gates": args.decay_gates, "end_id": args.end_id}
    if args.adapter:
        w = load_safetensors(args.adapter)
        prefix, gates = w["prefix"], w["gates"]
        res["adapter"] = args.adapter
        res["tokens"] = prefix.shape[0]
    else:
        prefix, gates, info = train(m, tok, args)
        res.update(info)
    ad = {"prefix": prefix, "gates": gates, "start_layer": args.start_layer}
    res["trainSeconds"] = round(time.time() - t0, 1)
    res["valNll"] = round(val_nll(m, tok, ad, args), 4)
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"prefix": prefix.flatten().tolist(), "gates": gates.flatten().tolist(),
                       "tokens": prefix.shape[0], "startLayer": args.start_layer}, f)
    texts = sample(m, tok, ad, args)
    if args.samples_out:
        with open(args.samples_out, "w") as f:
            json.dump(texts, f)
    res.update({k: round(v, 3) for k, v in adherence(args.style, texts).items()})
    res["gatesAbsMean"] = round(float(gates.abs().mean()), 4)
    res["prefixNorm"] = round(float(prefix.norm()), 3)
    res["load"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
