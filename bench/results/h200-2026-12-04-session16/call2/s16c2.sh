#!/bin/bash
# Session 16, call 2: the flash decode kernel loads its metadata and the first stages of its older
# keys before griddepcontrol.wait, and launches with PDL after every kernel
# (CudaOptions::pdl_flash_decode; --no-pdl-flash-decode to compare), with the 2.1 key weight policy.
# kr-attention-check: checks (both shapes) and timing. End to end on / off: 8B FP8 and bf16 at batch
# 64 and 128, 3B AWQ at 64, 3B bf16 at batch 1 (ctx 128 / 4096 / 32768) and batch 16 at 32768.
# Then the W8A8 GEMM per shape with the K split forced to 1 / 2 / 3 / 4 (the 8B shapes).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run ac 120 $B/new/kr-attention-check --out $R/ac.json; grep -E "FAIL|checks:|decode b|block shapes" $R/ac.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
dl() { echo "$1 $(grep -E 'graph replay|decode batch (1|16|64|128) |prefill pp512' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for v in on off; do
    X=""; [ $v = off ] && X="--no-pdl-flash-decode"
    run f$v-$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64,128:200:32 $X; dl f$v-$rep
    run g$v-$rep 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64,128:200:32 $X; dl g$v-$rep
    run a$v-$rep 60 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 64:200:64 $X; dl a$v-$rep
  done
done
for v in on off; do
  X=""; [ $v = off ] && X="--no-pdl-flash-decode"
  run l$v 90 $C --arch llama-3.2-3b $X; dl l$v
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for sp in 1 2 3 4; do
  run gb$sp 60 $C --fp8-gemm-bench --arch llama-3.1-8b --fp8-gemm-split $sp
done
grep -E "wgmma|plan|T ?=|qkv|o_proj|gate_up|down" $R/gb1.txt | head -30 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c2.tgz -C /tmp r
