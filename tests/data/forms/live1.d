(000) ld       #0x0
(001) st       M[1]
(002) ldb      [vlanp]
(003) jeq      #0x1             jt 10	jf 4
(004) ld       #0x4
(005) st       M[1]
(006) ldh      [12]
(007) jeq      #0x8100          jt 10	jf 8
(008) jeq      #0x88a8          jt 10	jf 9
(009) jeq      #0x9100          jt 10	jf 21
(010) ldb      [vlanp]
(011) jeq      #0x1             jt 12	jf 14
(012) ldb      [vlan_tci]
(013) ja       15
(014) ldh      [14]
(015) and      #0xfff
(016) jeq      #0xa             jt 17	jf 21
(017) ldx      M[1]
(018) ldh      [x + 12]
(019) jeq      #0x800           jt 20	jf 21
(020) ret      #262144
(021) ret      #0
