(000) ldh      [12]
(001) jeq      #0x800           jt 2	jf 56
(002) ldb      [14]
(003) mod      #3
(004) jeq      #0x1             jt 5	jf 56
(005) ldb      [15]
(006) xor      #0x3
(007) jeq      #0x1             jt 8	jf 56
(008) ld       #pktlen
(009) jgt      #0x64            jt 10	jf 56
(010) ldb      [16]
(011) st       M[8]
(012) ldb      [17]
(013) tax      
(014) ld       M[8]
(015) sub      x
(016) jeq      #0x5             jt 17	jf 56
(017) ldb      [18]
(018) st       M[12]
(019) ldb      [19]
(020) tax      
(021) ld       M[12]
(022) mul      x
(023) jeq      #0x6             jt 24	jf 56
(024) ldb      [20]
(025) lsh      #2
(026) jeq      #0x4             jt 27	jf 56
(027) ldb      [20]
(028) st       M[3]
(029) ldb      [21]
(030) tax      
(031) ld       M[3]
(032) lsh      x
(033) jeq      #0x4             jt 34	jf 56
(034) ldb      [23]
(035) jeq      #0x6             jt 36	jf 56
(036) ldh      [20]
(037) jset     #0x1fff          jt 56	jf 38
(038) ldxb     4*([14]&0xf)
(039) ldb      [x + 15]
(040) and      #0x7
(041) jeq      #0x1             jt 42	jf 56
(042) ldb      [22]
(043) st       M[10]
(044) ldb      [23]
(045) tax      
(046) ld       M[10]
(047) div      x
(048) jeq      #0x2             jt 49	jf 56
(049) ldb      [24]
(050) rsh      #1
(051) jeq      #0x3             jt 52	jf 56
(052) ldb      [25]
(053) or       #0x4
(054) jeq      #0x5             jt 55	jf 56
(055) ret      #262144
(056) ret      #0
