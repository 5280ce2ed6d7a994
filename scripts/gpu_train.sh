#!/bin/bash
# One device call (see weights/MODEL_CARD.md, "GPU runs"): unpack the carried training
# cache (python -m deidvid.train pack --out gpu/train.pack.npz), train the paper AE and the
# residual AE side by side on the GPU for $1 minutes, then time the model stage on cuda vs cpu.
# Run from the repository root with OUT set; the pack and gpu/crop.npz travel in gpu/.
#   PAPER, RESIDUAL: extra options of each run. Session 5 trained both from scratch;
#   session 21: PAPER="--init-weights ae_paper" (continue the bundled model),
#   RESIDUAL="--channels 96,192,288" (a wider U-Net, from scratch).
# No separate smoke runs (they cost a minute of the budget): a run that has logged no step after
# a minute is reported with its log, and the call ends before the bench if a run left no checkpoint.
set -u
M=${1:-6.5}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
LOG=$OUT/train.log
exec > >(tee -a $LOG) 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
python3 -c "import torch,numpy,cv2; print(torch.__version__, numpy.__version__, cv2.__version__)"
python3 -m deidvid.train unpack --pack gpu/train.pack.npz --cache runs/gpucache || exit 1
D="--val-every 0 --cache-dir runs/gpucache --data-root /nonexistent --device ${DEV:-cuda}"
D="$D --steps 1000000 --workers 7 --log-every 25 --ckpt-every 250 --max-minutes $M"
P="--arch paper --batch 8 --clip-len 64 --id-frames 8 --lr 3e-4 ${PAPER:-}"
R="--arch residual --channels 64,128,192 --batch 32 --clip-len 8 --id-frames 1 --recognisers A,C"
R="$R --blur-aug 0.3 --margin 0.4 --beta 1.5 --lr 5e-4 ${RESIDUAL:-}"
date; echo "training $M min each"
python3 -m deidvid.train $P $D --out runs/gpu_paper > runs/paper.out 2>&1 &
P1=$!
python3 -m deidvid.train $R $D --out runs/gpu_res > runs/res.out 2>&1 &
P2=$!
for i in $(seq 1 60); do sleep 15; kill -0 $P1 2>/dev/null || kill -0 $P2 2>/dev/null || break
  if [ $i = 4 ]; then
    for r in paper res; do grep -q '"step"' runs/gpu_$r/log.jsonl 2>/dev/null || { echo "$r: no step yet"; tail -n 20 runs/$r.out; }; done
  fi
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; tail -n1 runs/paper.out; tail -n1 runs/res.out; done
wait $P1 $P2; date  # (a bare wait would also wait for the tee above)
ls runs/gpu_paper/checkpoint.safetensors runs/gpu_res/checkpoint.safetensors >/dev/null 2>&1 || {
  echo "a run left no checkpoint"; tail -n 20 runs/paper.out runs/res.out; exit 2; }
tail -n 4 runs/paper.out runs/res.out
# The model tensors only (validate and export read nothing else; a file may carry 16 MB back).
for r in paper res; do mkdir -p $OUT/$r; cp runs/gpu_$r/{state.json,log.jsonl} $OUT/$r/
  python3 -c "import sys; from safetensors.torch import load_file, save_file
save_file({k: v for k, v in load_file(sys.argv[1]).items() if not k.startswith('optim.')}, sys.argv[2])" \
    runs/gpu_$r/checkpoint.safetensors $OUT/$r/checkpoint.safetensors; done
python3 -m deidvid.tools.bench_model --crop gpu/crop.npz --methods pixelate ae ae-paper --device ${DEV:-cuda} --runs 5 --batch 4 > $OUT/bench.jsonl
python3 -m deidvid.tools.bench_model --crop gpu/crop.npz --methods pixelate ae ae-paper --device cpu --runs 3 --batch 1 >> $OUT/bench.jsonl
cat $OUT/bench.jsonl; date
