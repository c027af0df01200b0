#!/bin/bash
# Session 14, call 7: what each kernel class costs a batch-1 decode step, by leaving it out (timing only:
# the output is wrong). Binary: 550dd47 + ablation.patch (env switches KR_ABL_NONORM: the add+norm kernels
# of matmul_add_rms_norm; KR_ABL_NOATTN: attention of decode steps; KR_ABL_NOGEMV: the quantized GEMVs;
# KR_ABL_NOLMHEAD: the lm_head matmul).
source .carry/hdr.sh
C=$B/abl/kr-cuda-bench
dl() { echo "$1 $(grep -E 'decode batch 1 ' $R/$1.txt | tr -s ' ' | sed 's/decode batch 1 ctx 128//; s/; [0-9.]* GB\/step.*roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for v in base NONORM NOATTN NOGEMV NOLMHEAD NONORM,NOATTN; do
    envs=""; [ $v != base ] && for e in ${v//,/ }; do envs="$envs KR_ABL_$e=1"; done
    run a-$v-$rep 40 env $envs $C --arch llama-3.2-3b --quant awq --brief --decode-only; dl a-$v-$rep
  done
done
for v in base NONORM NOATTN NOLMHEAD; do
  envs=""; [ $v != base ] && envs="KR_ABL_$v=1"
  run b-$v 40 env $envs $C --arch llama-3.2-3b --brief --decode-only; dl b-$v
  run f-$v 60 env $envs $C --arch llama-3.1-8b --quant fp8 --brief --decode-only; dl f-$v
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c7.tgz -C /tmp r
