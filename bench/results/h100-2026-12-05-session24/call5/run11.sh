source .carry/hdr.sh
N=$B/new; O2=$O/c11; mkdir -p $O2
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
for r in 1 2; do
  for d in 2 3 4 6; do Q=mlx4 bn mlx4-depth$d-$r $N --decode-stack --decode-stack-ring-depth $d; done
  bn awq-depth2-$r $N --decode-stack --decode-stack-ring-depth 2
  bn base-$r $B/base --decode-stack
done
A=llama-3.1-8b bn 8b-awq-depth2 $N --decode-stack --decode-stack-ring-depth 2
A=llama-3.1-8b Q=mlx4 bn 8b-mlx4-depth4 $N --decode-stack --decode-stack-ring-depth 4
A=llama-3.1-8b Q=mlx4 bn 8b-mlx4-depth2 $N --decode-stack --decode-stack-ring-depth 2
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c11.tgz c11 && rm -rf c11
