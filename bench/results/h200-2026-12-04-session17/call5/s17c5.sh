#!/bin/bash
# Session 17, call 5: the short-context prefill policy (CudaOptions::flash_prefill_short_max_keys
# 2048: variant 5 at most 2,048 keys, variant 1 above) against it off (--prefill-short-max-keys 0),
# pp512 on 3B bf16 / 8B bf16 / 8B FP8, alternated, twice; 3B AWQ with it once. GPTQ-8 3B decode
# at batch 80-128: dense from 65 rows vs the default 129 (8-bit codes run kV2 below it).
# kr-backend-ops --quick (bf16 and FP8 KV), --long-only, --long-only --prefill-variants 5 on the
# policy's binary. Binaries: the working tree (new/).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
pp() { echo "$1 $(grep -E 'replay|prefill pp512|decode batch (1|64) ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for m in "3b:--arch llama-3.2-3b" "8b:--arch llama-3.1-8b" "8bf8:--arch llama-3.1-8b --quant fp8"; do
    n=${m%%:*}; a=${m#*:}
    run $n-on-$rep 90 $C $a --brief --decode-at 1:128:8; pp $n-on-$rep
    run $n-off-$rep 90 $C $a --brief --decode-at 1:128:8 --prefill-short-max-keys 0; pp $n-off-$rep
  done
done
run awq-on 90 $C --arch llama-3.2-3b --quant awq --brief; pp awq-on
dl() { echo "$1 $(grep -E 'decode batch [0-9]+ ' $R/$1.txt | grep -v 'ctx 128 \|ctx 4096\|ctx 32768' | tr -s ' ' | sed 's/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
AT=64:200:32,80:200:32,96:200:32,128:200:32
run g8-129 70 $C --arch llama-3.2-3b --quant gptq8 --decode-only --decode-at $AT; dl g8-129
run g8-65 70 $C --arch llama-3.2-3b --quant gptq8 --decode-only --decode-at $AT --quant-dense-min 65; dl g8-65
( run quick 250 stdbuf -oL $B/new/kr-backend-ops --quick ) &
( run quickf 250 stdbuf -oL $B/new/kr-backend-ops --quick --kv-fp8 ) &
( run long 200 stdbuf -oL $B/new/kr-backend-ops --long-only ) &
( run long5 200 stdbuf -oL $B/new/kr-backend-ops --long-only --prefill-variants 5 ) &
wait
for n in quick quickf long long5; do echo "== $n: $(grep -c ' ok' $R/$n.txt) ok, $(grep -c FAIL $R/$n.txt) FAIL; last: $(tail -1 $R/$n.txt)" >> $S; done
grep FAIL $R/quick.txt $R/quickf.txt $R/long.txt $R/long5.txt | head -8 | cut -c1-220 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c5.tgz -C /tmp r
