#!/bin/bash
# Session 17, call 7: d2f1734, the 3B full run (pp64 / pp512 / pp2048, decode) with the
# short-context prefill policy on and off (--prefill-short-max-keys 0), alternated twice.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
pp() { echo "$1 $(grep -E 'prefill|replay' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run on-$rep 90 $C --arch llama-3.2-3b; pp on-$rep
  run off-$rep 90 $C --arch llama-3.2-3b --prefill-short-max-keys 0; pp off-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c7.tgz -C /tmp r
