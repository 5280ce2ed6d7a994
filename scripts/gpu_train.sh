#!/bin/bash
# One device call (see weights/MODEL_CARD.md, "GPU runs"): unpack the carried training
# cache (python -m deidvid.train pack --out gpu/train.pack.npz), smoke both runs, train
# both for $1 minutes side by side on the GPU, then time the model stage on cuda vs cpu.
# Run from the repository root with OUT set; the pack and gpu/crop.npz travel in gpu/.
set -u
M=${1:-6.5}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
LOG=$OUT/train.log
exec > >(tee -a $LOG) 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 -c "import torch,numpy,cv2; print(torch.__version__, numpy.__version__, cv2.__version__)"
python3 -m deidvid.train unpack --pack gpu/train.pack.npz --cache runs/gpucache || exit 1
D="--val-every 0 --cache-dir runs/gpucache --data-root /nonexistent --device ${DEV:-cuda}"
P="--arch paper --batch 8 --clip-len 64 --id-frames 8 --lr 3e-4"
R="--arch residual --channels 64,128,192 --batch 32 --clip-len 8 --id-frames 1 --recognisers A,C --blur-aug 0.3 --margin 0.4 --beta 1.5 --lr 5e-4"
[ "${SMOKE:-1}" = 1 ] && { python3 -m deidvid.train $P $D --out runs/smoke_p --steps 2 --workers 2 --log-every 1 2>&1 | tail -3 || exit 2
[ -f runs/smoke_p/checkpoint.safetensors ] || exit 2
python3 -m deidvid.train $R $D --out runs/smoke_r --steps 2 --workers 2 --log-every 1 2>&1 | tail -3
[ -f runs/smoke_r/checkpoint.safetensors ] || exit 3; }
date; echo "smoke ok; training $M min each"
python3 -m deidvid.train $P $D --out runs/gpu_paper --steps 1000000 --workers 7 --log-every 25 --ckpt-every 250 --max-minutes $M > runs/paper.out 2>&1 &
P1=$!
python3 -m deidvid.train $R $D --out runs/gpu_res --steps 1000000 --workers 7 --log-every 25 --ckpt-every 250 --max-minutes $M > runs/res.out 2>&1 &
P2=$!
for i in $(seq 1 60); do sleep 15; kill -0 $P1 2>/dev/null || kill -0 $P2 2>/dev/null || break
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; tail -n1 runs/paper.out; tail -n1 runs/res.out; done
wait $P1 $P2; date  # (a bare wait would also wait for the tee above)
tail -n 4 runs/paper.out runs/res.out
for r in paper res; do mkdir -p $OUT/$r; cp runs/gpu_$r/{checkpoint.safetensors,state.json,log.jsonl} $OUT/$r/; done
python3 -m deidvid.tools.bench_model --crop gpu/crop.npz --methods pixelate ae ae-paper --device ${DEV:-cuda} --runs 5 --batch 4 > $OUT/bench.jsonl
python3 -m deidvid.tools.bench_model --crop gpu/crop.npz --methods pixelate ae ae-paper --device cpu --runs 3 --batch 1 >> $OUT/bench.jsonl
cat $OUT/bench.jsonl; date
