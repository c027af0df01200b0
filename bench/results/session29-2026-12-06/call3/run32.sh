set -u; ROOT=$(pwd); O=$OUT; mkdir -p $O/s; rm -rf /tmp/x; mkdir -p /tmp/x
for v in O 1 A; do
  mkdir -p /tmp/x/$v; cd /tmp/x/$v; cuobjdump -xelf all $ROOT/.carry/objs/$v.o > /dev/null 2>&1; ls >> $O/s/ls.txt
  for c in *.cubin; do nvdisasm -g -c $c > $c.sass 2>> $O/s/err.txt; done
  cat *.sass | awk '/^\t\.section\t\.text\./{p=0} /^\t\.section\t\.text\..*decode_stack_kernelILi2ELb0ELb0ELb0ELb0/{p=1} p' > $O/s/$v.sass
  wc -l $O/s/$v.sass >> $O/s/ls.txt
done
cd $O && tar cf - s | xz -6 -T8 > s.tar.xz && rm -rf s
