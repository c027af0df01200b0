#!/bin/bash
# Session 16, call 5: the final tree (e6e6e93). kr-backend-ops: --quick (bf16 and FP8 cache),
# --only fp8_act, the long-context checks, the short checks of attention / decode. Then the README's
# lines that the flash decode changes move: 3B bf16 / AWQ / MLX-4 at batch 16 / 64 / 256 (ctx 200),
# the FP8 KV cache against bf16 KV at batch 256 and 4k context (3B), 8B FP8 against bf16 at batch 64.
source .carry/hdr.sh
O2=$B/fin/kr-backend-ops
run q 120 $O2 --quick; tail -1 $R/q.txt >> $S
run qf 120 $O2 --quick --kv-fp8; tail -1 $R/qf.txt >> $S
run fa 120 $O2 --only fp8_act; tail -1 $R/fa.txt >> $S
run lo 200 $O2 --long-only --long-prompt 0; tail -1 $R/lo.txt >> $S
run nl 150 $O2 --no-long --filter attention,decode,layers; tail -1 $R/nl.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
C=$B/fin/kr-cuda-bench
dl() { echo "$1 $(grep -E 'graph replay|decode batch (1|16|64|128|256) ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run b3-$rep 60 $C --arch llama-3.2-3b --brief --decode-only --decode-at 16:200:64,64:200:64,256:200:16; dl b3-$rep
  run aw-$rep 60 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 16:200:64,64:200:64,256:200:16; dl aw-$rep
  run ml-$rep 60 $C --arch llama-3.2-3b --quant mlx4 --brief --decode-only --decode-at 16:200:64,64:200:64; dl ml-$rep
done
for kv in bf16 fp8; do
  run kv$kv 90 $C --arch llama-3.2-3b --decode-only --kv-cache-dtype $kv --decode-at 256:4096:16 --json $R/kv-$kv.json; dl kv$kv
  grep -iE "kv blocks|blocks" $R/kv$kv.txt | head -3 >> $S
done
run f8 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl f8
run g8 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64; dl g8
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c5.tgz -C /tmp r
