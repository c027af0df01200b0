#!/bin/bash
# Session 18, call 18: issue 13's lines at this session's main (serving code unchanged since
# session 17): 3B AWQ / MLX-4 / bf16 batch 1 and 64, pp512; 8B FP8 / bf16 batch 1 and 64, pp512,
# alternated twice; 8B bf16 batch 256 at context 4096 with bf16 and FP8 KV (the blocks printed).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
pp() { echo "$1 $(grep -E 'replay|prefill pp512|decode batch (1|64|256) |blocks' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
for m in "awq:--arch llama-3.2-3b --quant awq" "mlx4:--arch llama-3.2-3b --quant mlx4" "3b:--arch llama-3.2-3b"; do
  n=${m%%:*}; a=${m#*:}
  run $n 90 $C $a --brief --decode-at 1:128:64,64:200:32; pp $n
done
for rep in 1 2; do
  for m in "8bf8:--arch llama-3.1-8b --quant fp8" "8b:--arch llama-3.1-8b"; do
    n=${m%%:*}; a=${m#*:}
    run $n-$rep 120 $C $a --brief --decode-at 1:128:32,64:200:32; pp $n-$rep
  done
done
for kv in bf16 fp8; do
  run kv-$kv 150 $C --arch llama-3.1-8b --decode-only --decode-at 256:4096:16 --kv-cache-dtype $kv; pp kv-$kv
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c18.tgz -C /tmp r
