#!/bin/bash
# Session 16, call 6: 4-bit decode at batch 128 / 256 (ctx 200): the default (256 rows and more
# dequantize each matrix to bf16 for cuBLAS: CudaOptions::quant_dense_min_tokens) against
# --quant-dense-min 4096 (batch 256 on the batched 4-bit kernel), AWQ and MLX-4; bf16 beside them.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
dl() { echo "$1 $(grep -E 'graph replay|decode batch (1|16|64|128|256) |prefill pp512' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run aw-$rep 60 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 128:200:32,256:200:16; dl aw-$rep
  run awd-$rep 60 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 128:200:32,256:200:16 --quant-dense-min 4096; dl awd-$rep
  run ml-$rep 60 $C --arch llama-3.2-3b --quant mlx4 --brief --decode-only --decode-at 256:200:16 --quant-dense-min 4096; dl ml-$rep
  run b3-$rep 60 $C --arch llama-3.2-3b --brief --decode-only --decode-at 128:200:32,256:200:16; dl b3-$rep
done
run aw8 60 $C --arch llama-3.1-8b --quant awq --brief --decode-only --decode-at 256:200:16; dl aw8
run aw8d 60 $C --arch llama-3.1-8b --quant awq --brief --decode-only --decode-at 256:200:16 --quant-dense-min 4096; dl aw8d
run g8 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 256:200:16; dl g8
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c6.tgz -C /tmp r
