// berth's own apk version vectors (Apache-2.0, like the rest of berth), written from the rules
// of apk-tools' `src/version.c` (`apk_version_validate`, `apk_version_compare`) as read at
// alpinelinux/apk-tools 90b974fd8510fbc2b3d6adde311ad1ba8754c728 and summarised in
// `crates/sbom/src/version/apk.rs`. No line is taken from apk-tools' own test data.
//
// One vector a line: `a OP b` (OP one of `<`, `=`, `>`: what apk's order says of a against b),
// `version` (valid) or `!version` (invalid; `!` alone is the empty version). `#` starts a
// comment line naming the rule the lines below it exercise.
const APK_VERSION_DATA: &str = "
# Identical versions are equal, whatever tokens they hold.
2.41.0-r3 = 2.41.0-r3
1.2.3_git20240101-r0 = 1.2.3_git20240101-r0
3.0_rc2 = 3.0_rc2
7.4b = 7.4b
5.12.0_beta3_p2-r1 = 5.12.0_beta3_p2-r1
4.7~3fa2c1-r2 = 4.7~3fa2c1-r2
1.0.1a_alpha-r0 = 1.0.1a_alpha-r0
20231113 = 20231113
6.6.58-r0 = 6.6.58-r0
3.11.10_pre1 = 3.11.10_pre1
2024.02.01 = 2024.02.01

# Digit runs compare as numbers when neither has a leading zero (the initial number and
# `.digits`), so 88 > 9 although '88' < '9' as strings.
8 < 10
99 < 100
10 > 8
2.9 < 2.10
2.10 > 2.9
2.41.9 < 2.41.10
1.99.2 < 1.100.2
10.2 > 9.99
3.2.101 > 3.2.11
8.5.1 < 8.5.2
4.19.300 > 4.19.299
2023.3 < 2024.1
7.88.1 > 7.9.2
1.2.1000 > 1.2.999
6.6.58 < 6.6.112
4294967296 > 4294967295
1.4294967296 > 1.4294967295
3.12.7 > 3.12.6
3.12.7 < 3.13.1
1.35.2 > 1.35.1

# The initial number is always numeric: leading zeros there do not matter.
01.75 = 1.75
007 = 7
010 > 8
00 = 0
0012.4 = 12.4
02.41.3 < 2.41.10

# A `.digits` token where either side starts with '0' compares as a string: byte by byte,
# a proper prefix first (Gentoo's rule).
11.05 < 11.5
11.5 > 11.05
11.010 < 11.09
11.09 > 11.010
11.09 < 11.1
11.0100 < 11.02
2.001 < 2.01
2.01 < 2.1
3.0 < 3.00
3.00 > 3.0
3.00 < 3.000
4.08 < 4.8
4.080 > 4.08
15.1.02 < 15.1.1
15.1.02 > 15.1.0
16.07 > 16.0
16.0 < 16.1
2024.01.15 < 2024.1.2
2024.01.15 < 2024.01.16
2024.02.01 > 2024.01.31
11.019 < 11.02
8.0.0 = 8.0.0
8.05 < 8.050

# A version that ends is less than one that goes on with `.digits`.
14.2 < 14.2.0
14.2.0 > 14.2
2.41 < 2.41.0
2.41.0 < 2.41.0.1
3 < 3.0
3.0.0.0 > 3.0.0
4.7 < 4.7.1
1.2.3 < 1.2.3.4
1.2.3.4 > 1.2.3

# One lowercase letter after a number: more than the bare number, letters by ASCII; the
# numbers before it decide first.
7.4 < 7.4a
7.4a < 7.4b
7.4z > 7.4c
7.4b > 7.4
1a < 1b
1z > 1y
2.0.9z < 2.0.10
1.1a < 1.4.4
1.0.2k > 1.0.2j
1.1.1w < 1.1.1x
5a > 4z

# A letter is less than a further `.digits` (the letter's token kind comes later).
7.4a < 7.4.1
7.4z < 7.4.0
1.0.2u < 1.0.2.1
3b < 3.0
3.0 > 3b

# The letter is compared before any suffix; a post-release suffix is less than a letter, a
# pre-release suffix less than anything that goes on.
7.4a_p1 > 7.4a
7.4a_rc1 < 7.4a
7.4a_rc1 > 7.4
7.4_p9 < 7.4a
7.4_rc1 < 7.4a
7.4b_alpha > 7.4a_p5
7.4a > 7.4_git20240101

# Pre-release suffixes come before the release: alpha < beta < pre < rc < (none).
3.0_alpha < 3.0_beta
3.0_beta < 3.0_pre
3.0_pre < 3.0_rc
3.0_rc < 3.0
3.0_alpha < 3.0
3.0 > 3.0_beta
3.0 > 3.0_pre
3.0_rc2 < 3.0
3.0_rc2 > 3.0_beta9
3.0_pre20240101 < 3.0_rc1
3.0_alpha99 < 3.0_beta1
3.0_rc2 > 3.0_pre3
3.0_beta > 3.0_alpha
3.0_rc > 3.0_pre
6.1_beta2 < 6.1_rc1
12.2_rc3 < 12.2
12.2_rc3 > 12.1
12.2_alpha > 12.1.9

# A pre-release suffix is less than whatever the other side has in its place: a further
# number, a letter, a post-release suffix, a hash, a revision.
12.2_alpha < 12.2.0
12.2_rc5 < 12.2.1
12.2_rc5 < 12.2a
12.2_rc5 < 12.2_cvs
12.2_rc5 < 12.2~00
12.2_rc5 < 12.2-r0
2.41.0_rc1-r0 < 2.41.0-r0
2.41.0_rc1-r9 < 2.41.0
2.41.0-r0 > 2.41.0_rc1-r9

# Suffix numbers compare as numbers (leading zeros ignored); a suffix without a number is
# less than the same suffix with one, even 0.
3.0_rc < 3.0_rc1
3.0_rc1 < 3.0_rc2
3.0_rc9 < 3.0_rc10
3.0_rc10 > 3.0_rc9
3.0_rc < 3.0_rc0
3.0_rc01 = 3.0_rc1
3.0_rc0 = 3.0_rc000
1.2.3_git20240101 < 1.2.3_git20240102
1.2.3_git20231231 < 1.2.3_git20240101
1.2.3_p10 > 1.2.3_p9
1.2.3_beta010 > 1.2.3_beta9
1.2.3_alpha < 1.2.3_alpha0
1.2.3_p2 > 1.2.3_p1

# Post-release suffixes come after the release: (none) < cvs < svn < git < hg < p.
1.2.3 < 1.2.3_cvs
1.2.3_cvs < 1.2.3_svn
1.2.3_svn < 1.2.3_git
1.2.3_git < 1.2.3_hg
1.2.3_hg < 1.2.3_p
1.2.3_p > 1.2.3
1.2.3_git20240101 > 1.2.3
1.2.3_p1 > 1.2.3_git20990101
1.2.3_cvs20240101 < 1.2.3_svn1
1.2.3_hg5 > 1.2.3_git999
1.2.3_p0 > 1.2.3_rc9
1.2.3_cvs > 1.2.3_rc
1.2.3_svn > 1.2.3_cvs99

# A post-release suffix is less than a further number or a letter in its place, and more
# than a hash or a revision there.
1.2.3_p9 < 1.2.3.1
1.2.3_git20240101 < 1.2.3.0
1.2.3_p1 < 1.2.4
1.2.3_hg2 < 1.2.3a
1.2.3_cvs > 1.2.3~ff
1.2.3_p1 > 1.2.3-r99

# Several suffixes compare one by one; after equal ones, the side that goes on is more
# unless it goes on with a pre-release suffix, and a further suffix is more than a suffix
# number in its place (the suffix's token kind comes earlier).
5.0_alpha_p1 > 5.0_alpha
5.0_alpha_p1 > 5.0_alpha1
1.2.3_p < 1.2.3_p_p
5.0_beta_rc1 < 5.0_beta
5.0_beta_rc1 > 5.0_alpha_p
5.0_beta2_p1 > 5.0_beta2
5.0_beta2_p1 < 5.0_beta3
5.0_rc1_pre2 < 5.0_rc1
5.0_rc1_git20240101 > 5.0_rc1
5.0_rc1_git20240101 < 5.0
5.0_p1_p1 > 5.0_p1
5.0_p1_alpha < 5.0_p1
5.0_p1_alpha > 5.0_p0
5.0_p_alpha < 5.0_p
5.0_git_svn < 5.0_git_hg
5.0_alpha_beta < 5.0_alpha_rc
5.0_alpha_beta_rc = 5.0_alpha_beta_rc
5.0_pre_pre < 5.0_pre

# The revision `-rN` compares as a number (leading zeros ignored); no revision is less than
# any, and the revision is the last thing compared.
2.41.0 < 2.41.0-r0
2.41.0-r0 < 2.41.0-r1
2.41.0-r3 > 2.41.0-r2
2.41.0-r9 < 2.41.0-r10
2.41.0-r100 > 2.41.0-r99
2.41.0-r01 = 2.41.0-r1
2.41.0-r007 = 2.41.0-r7
2.41.0-r3 < 2.41.1-r0
2.41.0-r3 < 2.41.0.1
2.41.0-r3 < 2.41.0a
2.41.0-r3 < 2.41.0_p1
2.41.0-r3 < 2.41.0_cvs
2.41.0-r3 < 2.41.0~0
2.41.0-r3 > 2.41.0_rc1
2.41.0-r3 > 2.41.0_alpha-r5
1.2.3_git20240101-r0 < 1.2.3_git20240101-r1
1.2.3_git20240101-r9 < 1.2.3_git20240102-r0
1.2.3_git20240101-r0 > 1.2.3_git20240101
1.2.3_git20240101-r0 < 1.2.3_git20240101_p1
1.2.3_git20240101-r0 > 1.2.3-r5
3.0_rc2-r1 > 3.0_rc2-r0
3.0_rc2-r5 < 3.0_rc3-r0
3.0_rc2-r5 < 3.0-r0
7.4b-r2 > 7.4b-r1
7.4b-r2 < 7.4c-r0

# A commit hash `~hex` compares as a string (a proper prefix first, '10' < '9'); it sits
# after the suffixes and before the revision, so it is more than a revision in its place
# and less than a number, letter or post-release suffix there.
4.7~3fa2c1 < 4.7~3fa2c2
4.7~3fa2c1 < 4.7~3fb
4.7~abc < 4.7~abcd
4.7~ff > 4.7~f0
4.7~10 < 4.7~9
4.7~0a > 4.7~0
4.7~00 > 4.7~0
4.7 < 4.7~0
4.7~deadbeef > 4.7
4.7~deadbeef < 4.7.1
4.7~deadbeef < 4.7a
4.7~deadbeef < 4.7_p1
4.7~deadbeef > 4.7_rc1
4.7~deadbeef > 4.7-r7
4.7~deadbeef-r1 > 4.7~deadbeef
4.7~deadbeef-r1 < 4.7~deadbeef-r2
4.7~deadbeef-r9 < 4.7~deadbef0-r0
4.7_git20240101~abc123 > 4.7_git20240101
4.7_git20240101~abc123 < 4.7_git20240102~000000
4.7_git20240101~abc123 < 4.7_git20240101_p1
4.7a~12 > 4.7a
4.7a~12 < 4.7b
4.7~c0ffee = 4.7~c0ffee

# Numbers are 64-bit and wrap as apk_blob_pull_uint's uint64_t does: 2^64 reads as 0.
18446744073709551615 > 18446744073709551614
18446744073709551616 = 0
18446744073709551617 = 1
3.18446744073709551617 = 3.1
1.2_rc18446744073709551617 = 1.2_rc1
2.0-r18446744073709551616 = 2.0-r0

# Upgrade paths, ascending (a busybox-like package through pre-releases, revisions, snapshots and point releases): each version is
# less than the next, and more than the one two before it.
1.36.1-r0 < 1.36.1-r1
1.36.1-r1 < 1.36.1-r28
1.36.1-r28 < 1.36.1_p1-r0
1.36.1_p1-r0 < 1.37.0_alpha-r0
1.37.0_alpha-r0 < 1.37.0_alpha1
1.37.0_alpha1 < 1.37.0_beta1-r0
1.37.0_beta1-r0 < 1.37.0_rc1
1.37.0_rc1 < 1.37.0_rc1-r0
1.37.0_rc1-r0 < 1.37.0-r0
1.37.0-r0 < 1.37.0-r1
1.37.0-r1 < 1.37.0_git20240601-r0
1.37.0_git20240601-r0 < 1.37.0_p2
1.37.0_p2 < 1.37.0a
1.37.0a < 1.37.0a-r1
1.37.0a-r1 < 1.37.0b
1.37.0b < 1.37.0.1_rc1
1.37.0.1_rc1 < 1.37.0.1
1.37.0.1 < 1.37.01
1.37.01 < 1.37.1
1.37.1 < 1.37.10
1.37.10 < 1.38_alpha
1.38_alpha < 1.38
1.36.1-r28 > 1.36.1-r0
1.36.1_p1-r0 > 1.36.1-r1
1.37.0_alpha-r0 > 1.36.1-r28
1.37.0_alpha1 > 1.36.1_p1-r0
1.37.0_beta1-r0 > 1.37.0_alpha-r0
1.37.0_rc1 > 1.37.0_alpha1
1.37.0_rc1-r0 > 1.37.0_beta1-r0
1.37.0-r0 > 1.37.0_rc1
1.37.0-r1 > 1.37.0_rc1-r0
1.37.0_git20240601-r0 > 1.37.0-r0
1.37.0_p2 > 1.37.0-r1
1.37.0a > 1.37.0_git20240601-r0
1.37.0a-r1 > 1.37.0_p2
1.37.0b > 1.37.0a
1.37.0.1_rc1 > 1.37.0a-r1
1.37.0.1 > 1.37.0b
1.37.01 > 1.37.0.1_rc1
1.37.1 > 1.37.0.1
1.37.10 > 1.37.01
1.38_alpha > 1.37.1
1.38 > 1.37.10

# Upgrade paths, ascending (a snapshot-only package reaching its first release): each version is
# less than the next, and more than the one two before it.
0_git20230101 < 0_git20230101-r1
0_git20230101-r1 < 0_git20231224
0_git20231224 < 0_git20240101~abc-r0
0_git20240101~abc-r0 < 0_git20240101~abd
0_git20240101~abd < 0_git20240101_p1
0_git20240101_p1 < 0.2_alpha
0.2_alpha < 0.2
0_git20231224 > 0_git20230101
0_git20240101~abc-r0 > 0_git20230101-r1
0_git20240101~abd > 0_git20231224
0_git20240101_p1 > 0_git20240101~abc-r0
0.2_alpha > 0_git20240101~abd
0.2 > 0_git20240101_p1

# Upgrade paths, ascending (a kernel-like package): each version is
# less than the next, and more than the one two before it.
6.6.9-r0 < 6.6.10-r0
6.6.10-r0 < 6.6.58-r0
6.6.58-r0 < 6.6.58-r1
6.6.58-r1 < 6.12_rc1
6.12_rc1 < 6.12_rc7
6.12_rc7 < 6.12
6.12 < 6.12-r0
6.12-r0 < 6.12.1-r0
6.6.58-r0 > 6.6.9-r0
6.6.58-r1 > 6.6.10-r0
6.12_rc1 > 6.6.58-r0
6.12_rc7 > 6.6.58-r1
6.12 > 6.12_rc1
6.12-r0 > 6.12_rc7
6.12.1-r0 > 6.12

# Valid: digits{.digits}[letter]{_suffix[digits]}[~hex][-rdigits], each part in that order.
2.41.0-r3
1.2.3_git20240101-r0
3.0_rc2
0
7.4b
7.4b_p1-r2
5.0_alpha_beta_rc_p
5.0_rc01
4.7~3fa2c1
4.7~3fa2c1-r0
4.7_git20240101~abc123-r4
1a
20240101
5.0-r0
18446744073709551616
# Invalid: empty, or not starting with a digit.
!
!v2.41.0
!.5
# Invalid: a '.' not followed by digits, or after a letter or suffix.
!2.41.
!2.41..0
!1.0a.1
!3.0_alpha.1
!7.4_p1.2
# Invalid: a revision that is not one `-r` and digits, or anything after it.
!2.41.0-
!2.41.0-r
!2.41.0-3
!2.41.0-R3
!2.41.0-r3-r4
!2.41.0-r3a
!2.41.0-r3_p1
!2.41.0-r3~ab
!2.41.0-r3.1
!3.0_rc-1
# Invalid: more than one letter, an uppercase letter, digits after a letter, a letter after
# a suffix.
!7.4bc
!7.4b1
!7.4B
!7.4_p1a
# Invalid: a suffix that is empty or not one of alpha beta pre rc cvs svn git hg p exactly.
!3.0_
!3.0_RC2
!3.0_final
!3.0_pr
!3.0_prerelease
!3.0__rc
!5.0_p1_
# Invalid: a '~' without lowercase hex digits, a second '~', or a suffix or letter after it.
!4.7~
!4.7~xyz
!4.7~ABC
!4.7~ab~cd
!4.7~ab_p1
!4.7~abg
# Invalid: characters outside the grammar (other ecosystems' epochs and build tags).
!1.0+dfsg
!1:2.41.0
!1.0:1
";
