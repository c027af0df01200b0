#!/bin/bash
# Session 15, call 2: Backend::prefetch_weights (an L2 prefetch kernel a kernel or two ahead of the
# weights' reader, CudaOptions::l2_prefetch_max_tokens), on (--l2-prefetch 8 / 64) against off in the
# same binary: 3B AWQ / MLX-4 / bf16 batch 1, 8B FP8 batch 1 and 64, 3B AWQ batch 64; a CUPTI timeline
# of 3B AWQ batch 1 with it on; checks. Binary: HEAD e7780e2 + the uncommitted prefetch change (pf).
source .carry/hdr.sh
C=$B/pf/kr-cuda-bench; N=$B/pf/kr-backend-ops
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
dl() { echo "$1 $(grep -E 'DIFFERENT|graph replay|decode batch (1|64) ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; [0-9.]* GB\/step.*roofline (3.9 TB\/s)//; s/without.*/no-argmax/; s/; .*//' | tr '\n' '|')" >> $S; }
B1="--brief --decode-only"
for rep in 1 2; do
  run a-$rep 30 $C --arch llama-3.2-3b --quant awq $B1 --l2-prefetch 8; dl a-$rep
  run aoff-$rep 30 $C --arch llama-3.2-3b --quant awq $B1; dl aoff-$rep
  run m-$rep 30 $C --arch llama-3.2-3b --quant mlx4 $B1 --l2-prefetch 8; dl m-$rep
  run moff-$rep 30 $C --arch llama-3.2-3b --quant mlx4 $B1; dl moff-$rep
done
run a9 30 $C --arch llama-3.2-3b --quant awq $B1 --l2-prefetch 8 --l2-prefetch-fraction 0.9; dl a9
run a3 30 $C --arch llama-3.2-3b --quant awq $B1 --l2-prefetch 8 --l2-prefetch-fraction 0.3; dl a3
run b 30 $C --arch llama-3.2-3b $B1 --l2-prefetch 8 --l2-prefetch-fraction 0.9; dl b
run boff 30 $C --arch llama-3.2-3b $B1; dl boff
echo "elapsed $(( $(date +%s) - START ))s" >> $S
F64="--brief --decode-only --decode-at 1:200:64,64:200:64"
run f 60 $C --arch llama-3.1-8b --quant fp8 $F64 --l2-prefetch 64; dl f
run foff 60 $C --arch llama-3.1-8b --quant fp8 $F64; dl foff
run q64 40 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 64:200:64 --l2-prefetch 64; dl q64
run q64off 40 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 64:200:64; dl q64off
echo "elapsed $(( $(date +%s) - START ))s" >> $S
CUDA_INJECTION64_PATH=$B/libkr_cupti_trace.so KR_CUPTI_OUT=$R/tr-awq.csv run tr-awq 60 $C --arch llama-3.2-3b --quant awq --l2-prefetch 8 --profile-decode 8 --profile-batch 1
python3 $B/kernel_timeline.py $R/tr-awq.csv 8 > $R/sum-awq.txt 2>&1; echo "== awq prefetch timeline" >> $S; head -34 $R/sum-awq.txt | cut -c1-160 >> $S
( run qm 25 stdbuf -oL $N --only quant_models ) &
( run quick 40 stdbuf -oL $N --quick ) &
wait
for f in qm quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt $R/*.csv
tar czf $O/c2.tgz -C /tmp r
