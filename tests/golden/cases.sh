# The reference scans of the golden-output regression (tests/cli/test_golden.sh,
# tests/golden/make_goldens.sh): one of each kind of real scan ctbmd must get right or refuse.
#   example_ct        abdominal CT, 3 mm, TotalSegmentator's masks: T12 partial, L1-L5 named
#   CRLM-CT-1004      DICOM series, 5 mm, portal-venous: merged "L1" flagged, no L1-L2 BMD
#   STS_026           proximal-femur crop (PET/CT, 140 kVp): no_spine
#   ct_chest_cta_crop arterial chest CTA crop: levels_not_named (lung beside the "lumbar" bodies)
#   example_ct_small_bad_origin  a cut-out whose origin is 246 mm off
golden_args=()
golden_inputs() {
  local r=$1
  echo "$r/totalsegmentator/example_ct.nii.gz" "$r/crlm_abdomen_ct/CRLM-CT-1004" \
    "$r/sts_hip_ct/STS_026_CT_image.nii.gz" "$r/ts_chest_cta_crop/ct_chest_cta_crop.nii.gz" \
    "$r/totalsegmentator/example_ct_small_bad_origin.nii.gz"
}
