#!/bin/bash
# Session 16, call 8: the dense-dequantization plant (call7/plant-dequant.diff: rows g and g + 8 of
# a 4-bit tile swapped) on kr-backend-ops --only quant_ops, whose qmatmul dense cases (T 300) run it.
source .carry/hdr.sh
run plant-qo 150 $B/plant/kr-backend-ops --only quant_ops; tail -1 $R/plant-qo.txt >> $S; grep -c FAIL $R/plant-qo.txt >> $S
grep FAIL $R/plant-qo.txt | head -12 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c8.tgz -C /tmp r
