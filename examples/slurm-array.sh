#!/bin/bash
# The standard suite for four models as a Slurm job array: one cell per array task, one GPU each.
#
#   sbatch examples/slurm-array.sh
#   harness merge out/task-*/ --results results      # afterwards, on any machine that sees out/
#
# `harness plan standard --model ... --json` lists the cells (index, fingerprint, GPUs); the array
# range must match their count. Each task writes its own results folder, so nothing is shared
# while the tasks run; `--resume` makes a resubmitted array skip the cells that already finished.
#SBATCH --job-name=harness-standard
#SBATCH --array=0-3
#SBATCH --gpus=1
#SBATCH --cpus-per-task=16
#SBATCH --mem=128G
#SBATCH --time=12:00:00
#SBATCH --output=out/slurm-%A_%a.log
set -euo pipefail
MODELS=(--model mistral-7b --model qwen2.5-7b --model deepseek-7b --model phi-3-mini)
harness run standard "${MODELS[@]}" --cell "${SLURM_ARRAY_TASK_ID}" \
  --results "out/task-${SLURM_ARRAY_TASK_ID}" --resume --no-progress
