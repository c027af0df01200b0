#!/bin/bash
# Session 19, call 10: the decode stack kernel limited to block tables of up to 512 keys (call 9: slower
# at 1,024 / 4,000): kr-backend-ops --only decode_stack with the cases moved inside and past the limit;
# 3B AWQ batch 1 at contexts 128 / 256 / 400 with and without it; MLX-4 with it.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'replay|decode batch [0-9]+ |rror|FAIL|failed' $R/$1.txt | head -5 | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
A="--arch llama-3.2-3b --quant awq"
run ds 200 stdbuf -oL $B/new/kr-backend-ops --only decode_stack
echo "== ds: $(grep -c ' ok' $R/ds.txt) ok, $(grep -c FAIL $R/ds.txt) FAIL; last: $(tail -1 $R/ds.txt)" >> $S
grep -E "FAIL" $R/ds.txt | head -10 >> $S
run st 60 $C $A --brief --decode-only --decode-at 1:128:64,1:256:64,1:400:32,1:1024:32 --decode-stack; dl st
run base 60 $C $A --brief --decode-only --decode-at 1:128:64,1:256:64,1:400:32,1:1024:32; dl base
run mlxst 60 $C --arch llama-3.2-3b --quant mlx4 --brief --decode-only --decode-at 1:128:64,1:400:32 --decode-stack; dl mlxst
run mlx 60 $C --arch llama-3.2-3b --quant mlx4 --brief --decode-only --decode-at 1:128:64,1:400:32; dl mlx
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c10.tgz -C /tmp r
