"""Every image gradient and perturbation method against an independent reference or an exact identity
(the checks live in ``properties.py``, shared with the mutation test)."""

from __future__ import annotations

import pytest
import properties as P


@pytest.mark.parametrize("method", ["grad_cam", "guided_grad_cam"])
def test_grad_cam_and_guided_grad_cam_equal_captum_and_follow_the_target(method):
    P.check_grad_cam_matches_captum(method)


def test_saliency_equals_autograd_of_the_probability():
    P.check_saliency_matches_autograd()


def test_input_x_gradient_is_x_times_signed_saliency():
    P.check_input_x_gradient_identity()


def test_smoothgrad_at_zero_noise_is_saliency():
    P.check_smoothgrad_zero_noise_is_saliency()


@pytest.mark.parametrize("baseline", ["blurred", "noise"])
def test_ig_completeness_against_the_chosen_baseline(baseline):
    P.check_ig_completeness_on_the_chosen_baseline(baseline)


@pytest.mark.parametrize("method", P.IGNORED)
def test_ignored_pixels_get_exactly_zero(method):
    P.check_ignored_pixels_get_zero(method)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_ignored_table_feature_gets_exactly_zero(method):
    P.check_ignored_table_feature_gets_zero(method)


@pytest.mark.parametrize("baseline", ["blurred", "black"])
def test_occlusion_is_the_drop_per_window(baseline):
    P.check_occlusion_is_the_drop(baseline)


def test_feature_ablation_is_the_drop_per_cell_for_the_target_asked():
    P.check_feature_ablation_is_the_drop()


@pytest.mark.parametrize("method,params", [("lime", None), ("shap", {"max_evals": 200}),
                                           ("feature_ablation", None), ("occlusion", None)])
def test_superpixel_methods_localised_with_the_right_sign(method, params):
    P.check_superpixel_method_localised(method, params)


def test_image_anchors_lie_in_the_region_the_model_reads():
    P.check_image_anchors_in_the_quadrant()


def test_tabular_lime_equals_an_independently_configured_lime(gbt, table):
    P.check_tabular_lime_matches_lime(gbt, table)


# ---- the remaining methods of the registry (each also has a mutant in tests/mutation) ---------
def test_tabular_saliency_equals_autograd_of_the_probability():
    P.check_tabular_saliency_matches_autograd()


def test_tabular_ig_completeness_against_the_mean_row():
    P.check_tabular_ig_completeness()


def test_tabular_shap_of_a_linear_model_is_coef_times_centred_x():
    P.check_tabular_shap_linear_known_answer()


def test_model_randomisation_passes_saliency():
    P.check_model_randomisation_passes_saliency()


@pytest.mark.parametrize("method", ["pdp", "ice"])
def test_pdp_and_ice_equal_sklearn(method):
    P.check_pdp_ice_match_sklearn(method)


def test_ale_of_a_linear_model_has_its_slopes():
    P.check_ale_linear_slope()


def test_permutation_importance_equals_sklearn():
    P.check_permutation_importance_matches_sklearn()


def test_ebm_rebuilds_interprets_score():
    P.check_ebm_matches_interpret()


def test_ebm_surrogate_follows_the_model_not_the_labels():
    P.check_ebm_surrogate_follows_the_model()
