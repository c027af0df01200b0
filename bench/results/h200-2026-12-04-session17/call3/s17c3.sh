#!/bin/bash
# Session 17, call 3: (a) kr-cuda-bench --attn-bench with two new cases, a prompt alone (512 and
# 2,048 tokens after none), every prefill variant: what the flash prefill kernel costs at pp512
# (call 1's timelines: 83 us a layer of 8B's 10.4 ms pp512). (b) the 3B bf16 pp512 timeline (CUPTI).
# (c) quant_dense_min_tokens 129 (the default now): 3B AWQ / MLX-4 / bf16 at batch 96-256, and
# --brief. (d) kr-backend-ops --quick and --only quant_ops on it. Binaries: the working tree (new/).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
run attn 150 $C --attn-bench --rounds 5; grep -E "chunk|best" $R/attn.txt | cut -c1-200 >> $S
CUDA_INJECTION64_PATH=$B/libkr_cupti_trace.so KR_CUPTI_OUT=$R/tp-3b.csv run tp-3b 120 $C --arch llama-3.2-3b --profile-prefill 512
python3 $B/kernel_timeline.py $R/tp-3b.csv 1 > $R/psum-3b.txt 2>&1; head -16 $R/psum-3b.txt | cut -c1-180 >> $S
dl() { echo "$1 $(grep -E 'graph replay|decode batch [0-9]+ |prefill' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
AT=96:200:32,128:200:32,144:200:16,192:200:16,256:200:16
for q in awq mlx4; do run $q 90 $C --arch llama-3.2-3b --quant $q --brief --decode-at $AT; dl $q; done
run bf 90 $C --arch llama-3.2-3b --brief --decode-at $AT; dl bf
( run quick 250 stdbuf -oL $B/new/kr-backend-ops --quick ) &
( run qo 200 stdbuf -oL $B/new/kr-backend-ops --only quant_ops ) &
wait
for n in quick qo; do echo "== $n: $(grep -c ' ok' $R/$n.txt) ok, $(grep -c FAIL $R/$n.txt) FAIL; last: $(tail -1 $R/$n.txt)" >> $S; done
grep FAIL $R/quick.txt $R/qo.txt | head -8 | cut -c1-220 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt $R/*.csv
tar czf $O/c3.tgz -C /tmp r
