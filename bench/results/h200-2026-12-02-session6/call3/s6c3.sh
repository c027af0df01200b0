#!/bin/bash
# Session 6, call 3: FP8 batch-1 row GEMV forms: row (FMA), row-tc (V=2, 3 blocks/SM), row-tc1 (V=1, 5 blocks/SM).
source .carry/hdr.sh
N=$B/new/kr-backend-ops; C=$B/new/kr-cuda-bench
( run ops-tc1 200 $N --only quant_gemv --qgemv row-tc1 ) &
( run ops-models1 150 $N --only quant_models --qgemv row-tc1 ) &
wait
for f in ops-tc1 ops-models1; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt)"; grep -E "FAIL" $R/$f.txt | head -8; done >> $S
run gv 60 $C --gemv-bench --quant fp8 --arch llama-3.1-8b
grep -E "T 1 " $R/gv.txt | grep -E " row" >> $S
for i in 1 2; do
  for k in row row-tc row-tc1; do run $k$i 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --qgemv $k; done
done
for f in row1 row-tc1 row-tc11 row2 row-tc2 row-tc12; do echo "$f $(grep -E 'decode batch 1  ctx|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/; .*roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c3.tgz -C /tmp r
