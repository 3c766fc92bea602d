#!/usr/bin/python3
"""PyTorch twin of `aligner refine` (issue 11, item 4): DPO as Hugging Face TRL's DPOTrainer computes
it, on the pairs that test/bench/refinetwin.ts exports from test/cli/refine.test.ts's protocol, to see
what a standard implementation gets from the same start adapter and the same 64 corrections.

The model, tokenizer, batch order, schedule, sampler and adherence rule are style_ref.py's (and so
torch_ref.py's). Per run: reference = the start adapter, loss =
TRL's sigmoid loss -logsigmoid(beta * ((log pi(c) - log pi(r)) - (log ref(c) - log ref(r)))), mean over
the batch's pairs, log-probabilities summed over each answer's tokens (end token 1 included), beta 0.1
(SPEC section 2); plus rpo_alpha x the chosen answers' NLL, mean over all their tokens in the batch (TRL's
`rpo_alpha`, computed from the same forward pass). torch.optim.AdamW (weight decay on prefix and gates),
warm-up over ceil(10 % of the steps) then cosine, clipping at 1, batch 8 pairs, 48 pairs trained and 16
held out as the export marks them. Answers are tokenised as the model wrote them, prompt and answer
together (TRL would tokenise the answer alone, which for llama2.c's tokenizer adds a leading space the
model never saw); the ids are checked against the ones our trainer uses.

After training: the "!" share of 50 samples per sampling seed (the test's: "Once upon a time",
T 0.8, top-p 0.9, 120 new tokens; transformers-like top-p and torch.multinomial, so the same seed
draws other samples than our sampler), the validation NLL on the first 40 base.val stories (end token
included), the held-out pairs' DPO loss and accuracy. The adapter is written as JSON for
`refinetwin.js score`. One JSON line per run on stdout.

  node out/test/bench/refinetwin.js export .test-tmp/twin
  /usr/bin/python3 test/bench/dpo_ref.py --dir .test-tmp/twin --lr 0.01,0.03 --epochs 1,2 --rpo-alpha 0,30
  /usr/bin/python3 test/bench/dpo_ref.py --dir .test-tmp/twin --score .test-tmp/twin/ours-0.json
Every combination of the comma-separated --lr, --epochs and --rpo-alpha values is one run. What TRL does
not have and `aligner refine` does (src/train/corrections.ts), on answers that the start adapter samples
itself, 4 per pair (here with PyTorch's sampler), one batch of them per step: --edit E --keep K are its
--edit-weight and --anchor (E x the (1 - p)-weighted NLL of the corrected tokens; K x the KL divergence from
the start's --top 8 likeliest next tokens at the other answer tokens); --anchor W is what its --anchor was
before: W x the token-mean NLL of those answers.
--batching bucket --warmup-start ours make the run follow our trainer's batch order and warm-up
(style_ref.py), for a step-by-step comparison with `refinetwin.js ours`: --against F prints how far
each run's adapter is from the adapter JSON F (largest absolute difference, prefix and gates).
"""
import argparse
import difflib
import itertools
import json
import math
import os
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from style_ref import MODEL, STYLES, Tok512, adherence, batch_order, lr_at, pack, read_texts, sample  # noqa: E402
from torch_ref import Llama  # noqa: E402

END = 1  # llama2.c stories end with BOS
PROMPT = "Once upon a time"  # the test's, and style_ref.sample()'s
SAMPLING_SEEDS = [900001, 900101, 900201, 900301]  # refineprotocol.ts: the test's first


def load_pairs(path, tok):
    """The exported pairs as (chosen ids, rejected ids, first target position); checks our trainer's ids."""
    train, held, differ = [], [], 0
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            prompt = tok.encode(r["prompt"])
            row = []
            for side in ("chosen", "rejected"):
                ids = tok.encode(r["prompt"] + r[side]) + [END]
                assert ids[:len(prompt)] == prompt, "the prompt's tokens change with the answer"
                differ += ids != r[side + "Ids"]
                row.append(ids)
            differ += len(prompt) != r["targetsFrom"]
            (held if r["split"] == "held" else train).append((row[0], row[1], len(prompt)))
    return train, held, differ


def pair_batch(pairs):
    """Chosen rows then rejected rows, right-padded; labels -100 on the prompt and the padding."""
    seqs = [p[0] for p in pairs] + [p[1] for p in pairs]
    ids, labels = pack(seqs)
    starts = [p[2] for p in pairs] * 2
    for b, s in enumerate(starts):
        labels[b, :s - 1] = -100  # position t predicts token t+1: targets from position `s`
    return ids, labels


def seq_logps(m, ad, ids, labels):
    """Per row: the sum of the target tokens' log-probabilities, and their count."""
    logp = F.log_softmax(m.forward(ids, ad), dim=-1)
    mask = labels != -100
    tok = torch.gather(logp, 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (tok * mask).sum(-1), mask.sum(-1)


def dpo_loss(m, ad, batch, ref, beta, alpha):
    """TRL's sigmoid DPO loss (+ rpo_alpha x the chosen rows' token-mean NLL) and its reward accuracy."""
    ids, labels = batch
    logps, counts = seq_logps(m, ad, ids, labels)
    P = ids.shape[0] // 2
    logits = beta * ((logps[:P] - logps[P:]) - (ref[:P] - ref[P:]))
    loss = -F.logsigmoid(logits).mean()
    if alpha:
        loss = loss + alpha * (-logps[:P].sum() / counts[:P].sum())
    return loss, float((logits > 0).float().mean())  # TRL's rewards/accuracies


def val_nll(m, tok, ad):
    seqs = [tok.encode(t) + [END] for t in read_texts(os.path.join(STYLES, "base.val.jsonl"), 40)]
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(seqs), 20):
            ids, labels = pack(seqs[i:i + 20])
            logps, n = seq_logps(m, ad, ids, labels)
            total -= float(logps.sum())
            count += int(n.sum())
    return total / count


def shares(m, tok, ad, seeds):
    out = []
    for seed in seeds:
        s = SimpleNamespace(samples=50, sample_seed=seed, temperature=0.8, top_p=0.9, max_new_tokens=120)
        out.append(round(adherence("shout", sample(m, tok, ad, s))["meanBang"], 3))
    return out


def anchor_answers(m, tok, start, count, longest, seed):
    """What `aligner refine --anchor` adds, sampled here: `count` answers of the start adapter to the test's
    prompt (sample()'s) at temperature 1 without truncation, at most `longest` tokens; as (ids, first target)."""
    s = SimpleNamespace(samples=count, sample_seed=seed, temperature=1.0, top_p=1.0, max_new_tokens=longest)
    head = len(tok.encode(PROMPT))
    return [(tok.encode(text), head) for text in sample(m, tok, start, s)]


def anchor_nll(m, ad, rows):
    """Token-mean NLL of the anchor answers' tokens (no end token: the answers stop where sampling did)."""
    ids, labels = pack([r[0] for r in rows])
    for b, (_, s) in enumerate(rows):
        labels[b, :s - 1] = -100
    logps, counts = seq_logps(m, ad, ids, labels)
    return -logps.sum() / counts.sum()


def edited(pairs):
    """Per pair, the positions of the chosen answer's tokens that the correction changed (outside the
    matching blocks of difflib's diff against the rejected answer; src/train/corrections.ts uses jsdiff)."""
    out = []
    for c, r, s in pairs:
        ops = difflib.SequenceMatcher(None, r[s:], c[s:], autojunk=False).get_opcodes()
        out.append([s + j for op, _, _, j1, j2 in ops if op in ("replace", "insert") for j in range(j1, j2)])
    return out


def edit_loss(m, ad, pairs):
    """`aligner refine --edit-weight`'s term: the mean over the edited tokens of (1 - p) x their NLL, p held."""
    ids, _ = pack([p[0] for p in pairs])
    logp = F.log_softmax(m.forward(ids, ad), dim=-1)
    terms = [-(1 - logp[b, t - 1, ids[b, t]].exp().detach()) * logp[b, t - 1, ids[b, t]]
             for b, ts in enumerate(edited(pairs)) for t in ts]
    return torch.stack(terms).mean()


def keep_loss(m, ad, start, pairs, anchor_rows, top):
    """`aligner refine --anchor`'s term: the mean over the chosen answers' unedited tokens and the anchor
    answers' tokens of the KL divergence from the start adapter's `top` likeliest next tokens."""
    rows = [p[0] for p in pairs] + [a[0] for a in anchor_rows]
    firsts = [p[2] for p in pairs] + [a[1] for a in anchor_rows]
    skip = [set(ts) for ts in edited(pairs)] + [set() for _ in anchor_rows]
    ids, _ = pack(rows)
    mask = torch.zeros(ids.shape, dtype=torch.bool)
    for b, (s, e) in enumerate(zip(firsts, skip)):
        for t in range(s, len(rows[b])):
            mask[b, t - 1] = t not in e
    with torch.no_grad():
        q, v = F.softmax(m.forward(ids, start), -1).topk(top, -1)
    lp = torch.gather(F.log_softmax(m.forward(ids, ad), -1), 2, v)
    kl = (q * (q.log() - lp)).sum(-1)
    return (kl * mask).sum() / mask.sum()


def scores(m, tok, ad, seeds):
    sh = shares(m, tok, ad, seeds)
    return {"shares": sh, "meanShare": round(sum(sh) / len(sh), 3), "nll": round(val_nll(m, tok, ad), 4)}


def refine(m, start, train, held, run, args, anchors):
    prefix = start["prefix"].clone().requires_grad_(True)
    gates = start["gates"].clone().requires_grad_(True)
    ad = {"prefix": prefix, "gates": gates, "start_layer": start["start_layer"]}

    def step_loss(pairs, alpha):
        batch = pair_batch(pairs)
        with torch.no_grad():
            ref = seq_logps(m, start, *batch)[0]
        return dpo_loss(m, ad, batch, ref, args.beta, alpha)

    opt = torch.optim.AdamW([prefix, gates], lr=run.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    lengths = [max(len(c), len(r)) for c, r, _ in train]
    total = math.ceil(len(train) / args.batch) * run.epochs
    sched = SimpleNamespace(lr=run.lr, warmup=math.ceil(total * 0.1), warmup_start=args.warmup_start)
    step = 0
    for e in range(run.epochs):
        groups = batch_order(lengths, args.batch, args.seed + e, args.batching, gen)
        if args.anchor or args.keep:  # one batch of anchor answers per training batch, a new order every epoch
            order = torch.randperm(len(anchors), generator=gen).tolist()
            size = math.ceil(len(anchors) / len(groups))
            anchor_batches = [order[i:i + size] for i in range(0, len(order), size)]
        for b, group in enumerate(groups):
            pairs = [train[i] for i in group]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, sched, total)
            opt.zero_grad(set_to_none=True)
            loss, _ = step_loss(pairs, run.rpo_alpha)
            if args.anchor:
                loss = loss + args.anchor * anchor_nll(m, ad, [anchors[i] for i in anchor_batches[b]])
            if args.edit:
                loss = loss + args.edit * edit_loss(m, ad, pairs)
            if args.keep:
                loss = loss + args.keep * keep_loss(m, ad, start, pairs, [anchors[i] for i in anchor_batches[b]], args.top)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([prefix, gates], 1.0)
            opt.step()
            step += 1
    with torch.no_grad():
        loss, acc = step_loss(held, 0)
    return {"prefix": prefix.detach(), "gates": gates.detach(), "start_layer": start["start_layer"]}, \
        {"steps": step, "heldDpoLoss": round(float(loss), 4), "heldAccuracy": round(acc, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="refinetwin.js export's folder")
    ap.add_argument("--lr", default="0.01")
    ap.add_argument("--epochs", default="2")
    ap.add_argument("--rpo-alpha", default="0")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--weight-decay", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batching", default="random", choices=["random", "bucket"])
    ap.add_argument("--warmup-start", default="hf", choices=["hf", "ours"])
    ap.add_argument("--seeds", default="all", help="sampling seeds: all (refineprotocol's four) or test (900001)")
    ap.add_argument("--score", nargs="*", help="only score these adapter JSON files")
    ap.add_argument("--anchor", type=float, default=0,
                    help="not TRL: + this x the NLL of 4 answers per pair that the start adapter samples (our --anchor before the KL term replaced it)")
    ap.add_argument("--edit", type=float, default=0,
                    help="+ this x the (1 - p)-weighted NLL of the tokens the corrections changed (our --edit-weight)")
    ap.add_argument("--keep", type=float, default=0,
                    help="+ this x the KL from the start's --top likeliest next tokens at the other answer tokens (our --anchor)")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--against", help="an adapter JSON to compare each run's adapter with")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = Llama(MODEL)
    tok = Tok512(os.path.join(MODEL, "llama2c", "tok512.bin"))
    seeds = SAMPLING_SEEDS if args.seeds == "all" else SAMPLING_SEEDS[:1]
    heads = m.cfg.heads

    def adapter_from(path):
        with open(path) as f:
            j = json.load(f)
        return {"prefix": torch.tensor(j["prefix"]).view(j["tokens"], -1),
                "gates": torch.tensor(j["gates"]).view(-1, heads), "start_layer": j["startLayer"]}

    load = lambda: [round(x, 2) for x in os.getloadavg()]  # noqa: E731
    start = adapter_from(os.path.join(args.dir, "start.json"))
    for path in args.score or []:
        print(json.dumps({"bench": "dpo_ref", "adapter": path, **scores(m, tok, adapter_from(path), seeds), "load": load()}),
              flush=True)
    if args.score is not None:
        return
    train, held, differ = load_pairs(os.path.join(args.dir, "pairs.jsonl"), tok)
    anchors = []
    if args.anchor or args.keep:  # 4 answers per pair, as long as the longest rejected answer at most (our referenceAnswers)
        with open(os.path.join(args.dir, "pairs.jsonl")) as f:
            records = [json.loads(line) for line in f]
        assert all(r["prompt"] == PROMPT for r in records), "the anchor samples from the test's prompt only"
        longest = max(len(tok.encode(r["rejected"])) for r in records)
        anchors = anchor_answers(m, tok, start, 4 * len(records), longest, args.seed + 10007)
    before = scores(m, tok, start, seeds)
    print(json.dumps({"bench": "dpo_ref", "start": True, "train": len(train), "held": len(held),
                      "idsDifferFromOurs": differ, **before, "load": load()}), flush=True)
    grid = itertools.product(*(map(float, args.lr.split(",")), map(int, args.epochs.split(",")),
                               map(float, args.rpo_alpha.split(","))))
    for lr, epochs, alpha in grid:
        run = SimpleNamespace(lr=lr, epochs=epochs, rpo_alpha=alpha)
        t0 = time.time()
        ad, info = refine(m, start, train, held, run, args, anchors)
        seconds = round(time.time() - t0, 1)
        name = f"torch-lr{lr:g}-e{epochs}-a{alpha:g}-w{args.anchor:g}-E{args.edit:g}-K{args.keep:g}-{args.batching}-{args.warmup_start}-s{args.seed}.json"
        with open(os.path.join(args.dir, name), "w") as f:
            json.dump({"prefix": ad["prefix"].flatten().tolist(), "gates": ad["gates"].flatten().tolist(),
                       "tokens": ad["prefix"].shape[0], "startLayer": ad["start_layer"]}, f)
        if args.against:
            other = adapter_from(args.against)
            info["against"] = {k: float((ad[k] - other[k]).abs().max()) for k in ("prefix", "gates")}
            info["moved"] = {k: round(float((ad[k] - start[k]).abs().max()), 3) for k in ("prefix", "gates")}
        after = scores(m, tok, ad, seeds)
        print(json.dumps({"bench": "dpo_ref", "lr": lr, "epochs": epochs, "rpoAlpha": alpha, "anchor": args.anchor, "edit": args.edit, "keep": args.keep, "beta": args.beta,
                          "batching": args.batching, "warmupStart": args.warmup_start, "seed": args.seed, **info,
                          **after, "dShare": round(after["meanShare"] - before["meanShare"], 3),
                          "dShareTestSeed": round(after["shares"][0] - before["shares"][0], 3),
                          "dNll": round(after["nll"] - before["nll"], 4), "adapter": name, "trainSeconds": seconds,
                          "load": load()}), flush=True)


if __name__ == "__main__":
    main()
