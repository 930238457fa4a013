"""« Qui peut voir mon dossier » (A3, A4, A5, A6, A7): blocks, treating doctor, the treating doctor's rights
granted to other practitioners, emergency opt-out, occupational physicians, the directory, the summary;
unblocking after the step-up re-check."""

import pytest

from access_control.actions import do_grant_treating_rights
from access_control.api import find_profile, visible_documents
from access_control.models import Block, OccupationalAuthorisation, TrailEntry, TreatingRightsGrant
from tests.portal_fixtures import _fresh_cache, signed_in, stepped_up, text, url  # noqa: F401

pytestmark = pytest.mark.django_db


def test_privacy_page_summarises_the_settings_and_pins_its_queries(client, personas, django_assert_num_queries):
    alice = personas.alice
    do_grant_treating_rights(alice, personas.emma, actor=alice.user)
    signed_in(client, alice)
    client.get(url("privacy"))
    # 14 (13 before A4's grants): session, user, second-factor device, the profiles the user manages (with the
    # treating doctor) and the current one; one query each for the blocks, the occupational authorisations and
    # the treating doctor's rights granted (A4), all three with their practitioners and professions; the
    # professions, the directory search, the category-mask count; the session save (savepoint, update, release).
    # Constant whatever the number of blocks, grants or results.
    with django_assert_num_queries(14):
        page = client.get(url("privacy") + "?name=ber")
    content = text(page)
    assert "Votre médecin traitant est Dr Claire Dubois" in content
    assert "Vous avez bloqué 1 professionnel" in content
    assert "Vous avez donné les droits de votre médecin traitant à 1 autre professionnel" in content
    assert "Les médecins des assurances et des mutuelles n'y ont jamais accès." in content
    assert "Débloquer Dr Hugo Bernard" in content


def test_directory_searches_by_name_profession_and_city_without_insurers__A3(client, personas):
    signed_in(client, personas.alice)
    page = client.get(url("privacy") + "?name=perrin")
    assert "Julien Perrin" not in text(page)  # insurers' physicians are not offered (never any access)
    page = client.get(url("privacy") + "?profession=21")
    assert "Emma Girard" in text(page) and "David Lambert" not in text(page)
    page = client.get(url("privacy") + "?city=paris&name=lambert")
    assert "Dr David Lambert" in text(page) and "Bloquer Dr David Lambert" in text(page)
    page = client.get(url("privacy") + "?name=a")
    assert "Indiquez au moins deux lettres" in text(page)


def test_block_then_unblock_after_the_step_up__A5(client, personas):
    alice, david = personas.alice, personas.david
    signed_in(client, alice)
    response = client.post(url("block"), {"practitioner": david.pk}, follow=True)
    assert "Dr David Lambert est bloqué" in text(response)
    assert find_profile(david, nir=alice.nir, birth_date=alice.birth_date) is None
    client.post(url("block"), {"practitioner": david.pk})  # replay: idempotent
    assert (
        TrailEntry.objects.filter(profile=alice, action="block_practitioner", detail=f"rpps:{david.rpps}").count() == 1
    )

    # Unblocking asks for the step-up first, on GET and on POST alike.
    response = client.get(url("unblock", david.pk))
    assert response.status_code == 302 and response.url.startswith(url("step_up"))
    response = client.post(url("unblock", david.pk))
    assert response.status_code == 302 and response.url.startswith(url("step_up"))
    assert Block.objects.filter(profile=alice, practitioner=david).exists()

    # A wrong password does not step up; the right one does, and the confirmation page then unblocks.
    next_url = url("unblock", david.pk)
    response = client.post(url("step_up"), {"password": "faux-mot-de-passe", "next": next_url})
    assert "Mot de passe incorrect." in text(response)
    response = client.post(url("step_up"), {"password": personas.password, "next": next_url})
    assert response.status_code == 302 and response.url == next_url
    assert "Débloquer Dr David Lambert ?" in client.get(next_url).text
    response = client.post(next_url, follow=True)
    assert "Dr David Lambert n'est plus bloqué." in text(response)
    assert find_profile(david, nir=alice.nir, birth_date=alice.birth_date) is not None
    response = client.post(next_url, follow=True)  # replay
    assert "n'est pas bloqué" in text(response)
    assert TrailEntry.objects.filter(profile=alice, action="unblock_practitioner").count() == 1


def test_step_up_expires(client, personas):
    signed_in(client, personas.alice)
    session = client.session
    session["carnet_step_up_until"] = 1  # long ago
    session.save()
    assert client.get(url("unblock", personas.hugo.pk)).url.startswith(url("step_up"))


def test_step_up_accepts_a_backup_code(client, personas):
    from accounts.second_factors import do_issue_backup_codes

    user = personas.alice.user
    codes = do_issue_backup_codes(user, actor=user)
    signed_in(client, personas.alice)
    response = client.post(url("step_up"), {"code": codes[0], "next": url("my_data")})
    assert response.status_code == 302 and response.url == url("my_data")


def test_the_treating_doctor_cannot_be_blocked__A5_A6(client, personas):
    signed_in(client, personas.alice)
    response = client.post(url("block"), {"practitioner": personas.claire.pk}, follow=True)
    assert "Vous ne pouvez pas bloquer votre médecin traitant" in text(response)
    assert not Block.objects.filter(profile=personas.alice, practitioner=personas.claire).exists()


def test_declare_and_remove_the_treating_doctor__A6(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)
    client.post(url("treating_doctor"), {"practitioner": personas.david.pk})
    alice.refresh_from_db()
    assert alice.treating_doctor_id == personas.david.pk
    synthesis = alice.documents.get(title="Synthèse psychiatrique")
    assert synthesis in visible_documents(personas.david, alice)  # masked, but he is the treating doctor now
    response = client.post(url("treating_doctor"), {"practitioner": personas.gilles.pk}, follow=True)
    assert "Le médecin traitant doit être un médecin de soins" in text(response)
    client.post(url("treating_doctor"), {"operation": "remove"})
    alice.refresh_from_db()
    assert alice.treating_doctor_id is None


def test_emergency_opt_out_and_back__A7(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)
    response = client.post(url("emergency"), {"opt_out": "1"}, follow=True)
    assert "L'accès en urgence à votre dossier est refusé." in text(response)
    alice.refresh_from_db()
    assert alice.emergency_access_opt_out
    assert "Vous avez refusé l'accès en urgence" in client.get(url("privacy")).text
    client.post(url("emergency"), {"opt_out": "0"})
    alice.refresh_from_db()
    assert not alice.emergency_access_opt_out


def test_occupational_physician_only_with_express_authorisation__A3(client, personas):
    alice, gilles = personas.alice, personas.gilles
    signed_in(client, alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)
    assert find_profile(gilles, nir=alice.nir, birth_date=alice.birth_date) is None
    client.post(url("occupational"), {"practitioner": gilles.pk})
    assert OccupationalAuthorisation.objects.filter(profile=alice, practitioner=gilles).exists()
    assert find_profile(gilles, nir=alice.nir, birth_date=alice.birth_date) is not None
    client.post(url("occupational"), {"practitioner": gilles.pk, "operation": "revoke"})
    assert not OccupationalAuthorisation.objects.filter(profile=alice).exists()
    response = client.post(url("occupational"), {"practitioner": personas.david.pk}, follow=True)
    assert "Seul un médecin du travail" in text(response)


GRANT_BUTTON = ">Donner les droits de médecin traitant</button>"


def test_granted_treating_rights_show_masked_documents_until_revoked__A4(client, personas):
    alice, david = personas.alice, personas.david
    synthesis = alice.documents.get(title="Synthèse psychiatrique")  # masked, by Dr Claire Dubois
    assert synthesis.author_practitioner_id != david.pk
    assert synthesis not in visible_documents(david, alice)
    signed_in(client, alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)

    response = client.post(url("treating_rights"), {"practitioner": david.pk}, follow=True)
    assert "Dr David Lambert a maintenant les droits de votre médecin traitant" in text(response)
    assert synthesis in visible_documents(david, alice)
    client.post(url("treating_rights"), {"practitioner": david.pk})  # replay: idempotent
    assert TreatingRightsGrant.objects.filter(profile=alice, practitioner=david).count() == 1
    assert (
        TrailEntry.objects.filter(profile=alice, action="grant_treating_rights", detail=f"rpps:{david.rpps}").count()
        == 1
    )
    page = text(client.get(url("privacy")))
    assert "Vous avez donné les droits de votre médecin traitant à 1 autre professionnel" in page
    section = page[page.index("Droits de médecin traitant accordés") : page.index("Médecins du travail autorisés")]
    assert "Dr David Lambert" in section and "Retirer les droits" in section

    response = client.post(url("treating_rights"), {"practitioner": david.pk, "operation": "revoke"}, follow=True)
    assert "Dr David Lambert n'a plus les droits de votre médecin traitant" in text(response)
    assert synthesis not in visible_documents(david, alice)
    client.post(url("treating_rights"), {"practitioner": david.pk, "operation": "revoke"})  # replay
    assert not TreatingRightsGrant.objects.filter(profile=alice).exists()
    assert (
        TrailEntry.objects.filter(profile=alice, action="revoke_treating_rights", detail=f"rpps:{david.rpps}").count()
        == 1
    )
    assert "seul votre médecin traitant voit vos documents masqués" in text(client.get(url("privacy")))


def test_a_blocked_practitioner_is_not_granted_treating_rights__A4_A5(client, personas):
    alice, hugo = personas.alice, personas.hugo
    signed_in(client, alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)
    response = client.post(url("treating_rights"), {"practitioner": hugo.pk}, follow=True)
    assert "Vous avez bloqué ce professionnel : débloquez-le avant de lui donner des droits." in text(response)
    assert not TreatingRightsGrant.objects.filter(profile=alice).exists()
    assert not TrailEntry.objects.filter(profile=alice, action="grant_treating_rights").exists()


def test_a_practitioner_holding_granted_rights_cannot_be_blocked__A4_A5(client, personas):
    alice, david = personas.alice, personas.david
    signed_in(client, alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)
    client.post(url("treating_rights"), {"practitioner": david.pk})
    response = client.post(url("block"), {"practitioner": david.pk}, follow=True)
    assert "retirez-les avant de le bloquer" in text(response)
    assert not Block.objects.filter(profile=alice, practitioner=david).exists()
    assert find_profile(david, nir=alice.nir, birth_date=alice.birth_date) is not None


def test_directory_offers_treating_rights_only_where_they_may_be_granted__A4(client, personas):
    signed_in(client, personas.alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)

    def offered(name: str) -> bool:
        return GRANT_BUTTON in client.get(url("privacy") + f"?name={name}").content.decode()

    assert offered("lambert") and offered("girard")  # a doctor, a pharmacist
    assert not offered("dubois")  # the treating doctor has these rights already
    assert not offered("bernard")  # blocked (A5): unblock first
    assert not offered("fontaine")  # occupational physician (A3)
    client.post(url("treating_rights"), {"practitioner": personas.david.pk})
    page = client.get(url("privacy") + "?name=lambert").content.decode()
    assert GRANT_BUTTON not in page  # granted already
    assert "Bloquer Dr David Lambert" not in page  # revoke the rights before blocking
    response = client.post(url("treating_rights"), {"practitioner": personas.gilles.pk}, follow=True)
    assert "ne peuvent pas être donnés à un médecin conseil ou du travail" in text(response)
    response = client.post(url("treating_rights"), {"practitioner": personas.julien.pk}, follow=True)
    assert "ne peuvent pas être donnés à un médecin conseil ou du travail" in text(response)
    assert list(TreatingRightsGrant.objects.values_list("practitioner", flat=True)) == [personas.david.pk]


def _never_activated_child(personas):
    """A child's profile managed by Alice (L10), open but never activated (L4), with its provisional code."""
    from datetime import date, timedelta

    from django.utils import timezone

    from records import actions as profile_actions
    from records.identifiers import make_nir
    from records.models import Profile

    child, code = profile_actions.do_enrol_profile(
        nir=make_nir("1180675114044"), birth_name="MARTIN", first_names="Gabriel", birth_date=date(2018, 6, 2),
        sex="M", address_street="18 rue des Tournelles", postal_code="75004", city="PARIS",
        legal_representative=personas.alice, actor=None,
    )  # fmt: skip
    Profile.objects.filter(pk=child.pk).update(notice_sent_at=timezone.now() - timedelta(days=43))
    profile_actions.do_open_profile(child, actor=None)
    return child, code


def test_a_never_activated_profile_cannot_grant_treating_rights__A4_L4(client, personas):
    child, _code = _never_activated_child(personas)
    signed_in(client, personas.alice)
    stepped_up(client)  # these changes ask for the re-check (tested below)
    client.post(url("switch_profile"), {"profile": child.pk})
    page = client.get(url("privacy") + "?name=lambert").content.decode()
    assert GRANT_BUTTON not in page
    response = client.post(url("treating_rights"), {"practitioner": personas.david.pk}, follow=True)
    assert "activé par son titulaire" in text(response)
    assert not TreatingRightsGrant.objects.filter(profile=child).exists()


def test_a_representative_restricts_a_childs_record__L10_A5(client, personas):
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    client.post(url("block"), {"practitioner": personas.david.pk})
    assert Block.objects.filter(profile=personas.fanny, practitioner=personas.david).exists()
    assert not Block.objects.filter(profile=personas.alice, practitioner=personas.david).exists()


def test_a_never_activated_childs_profile_cannot_block_until_activated__L4_L10(client, personas):
    from records.models import Profile

    child, code = _never_activated_child(personas)
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": child.pk})
    response = client.post(url("block"), {"practitioner": personas.david.pk}, follow=True)
    assert "activé par son titulaire" in text(response)
    assert "Activer cet espace santé" in client.get(url("dashboard")).text
    response = client.post(url("activate_child"), {"provisional_code": code, "birth_date": "2018-06-02"})
    assert response.status_code == 302
    child.refresh_from_db()
    assert child.state == Profile.State.ACTIVE
    client.post(url("block"), {"practitioner": personas.david.pk})
    assert Block.objects.filter(profile=child, practitioner=personas.david).exists()


def test_stepped_up_helper_is_valid(client, personas):
    signed_in(client, personas.alice)
    stepped_up(client)
    assert client.get(url("unblock", personas.hugo.pk)).status_code == 200


# The same sensitive operations as the patient API's step-up list (patients.api): each POST without a fresh
# re-check goes to it with the form's input kept, and nothing changes until the confirmation page is posted.
SENSITIVE_POSTS = [
    ("emergency", lambda p: {"opt_out": "1"}, lambda profile: profile.emergency_access_opt_out),
    (
        "treating_doctor",
        lambda p: {"practitioner": str(p.david.pk)},
        lambda profile: profile.treating_doctor_id is not None and profile.treating_doctor.last_name == "Lambert",
    ),
    (
        "treating_rights",
        lambda p: {"practitioner": str(p.david.pk)},
        lambda profile: TreatingRightsGrant.objects.filter(profile=profile).exists(),
    ),
    (
        "occupational",
        lambda p: {"practitioner": str(p.gilles.pk)},
        lambda profile: OccupationalAuthorisation.objects.filter(profile=profile).exists(),
    ),
    ("notice_preferences", lambda p: {"channel": "post"}, lambda profile: profile.preferred_channel == "post"),
]


@pytest.mark.parametrize(("name", "form", "done"), SENSITIVE_POSTS, ids=[case[0] for case in SENSITIVE_POSTS])
def test_sensitive_changes_ask_for_the_step_up_and_keep_the_choice__A3_A4_A6_A7_N2(client, personas, name, form, done):
    from urllib.parse import parse_qs, urlsplit

    from records.models import Profile

    alice = personas.alice
    Profile.objects.filter(pk=alice.pk).update(preferred_channel="email", email_verified=True)
    signed_in(client, alice)
    posted = form(personas)
    response = client.post(url(name), {**posted, "back": "/confidentialite/?name=lambert"})
    assert response.status_code == 302 and response.url.startswith(url("step_up"))
    next_url = parse_qs(urlsplit(response.url).query)["next"][0]
    assert urlsplit(next_url).path == url(name)
    kept = parse_qs(urlsplit(next_url).query)
    assert all(kept[key] == [value] for key, value in posted.items())  # the patient's choice survives
    alice.refresh_from_db()
    assert not done(alice)
    assert client.get(next_url).url.startswith(url("step_up"))  # the confirmation page too needs the re-check

    response = client.post(url("step_up"), {"password": personas.password, "next": next_url})
    assert response.status_code == 302 and response.url == next_url
    confirmation = client.get(next_url)
    assert confirmation.status_code == 200
    assert all(f'name="{key}" value="{value}"' in confirmation.text for key, value in posted.items())
    alice.refresh_from_db()
    assert not done(alice)  # showing the confirmation changes nothing
    client.post(url(name), posted)
    alice.refresh_from_db()
    assert done(alice)


def test_narrowing_access_needs_no_step_up__A3_A4_A5_A6_N7(client, personas):
    from access_control.actions import do_authorise_occupational_physician, do_declare_treating_doctor

    alice, david, gilles = personas.alice, personas.david, personas.gilles
    do_grant_treating_rights(alice, david, actor=alice.user)
    do_authorise_occupational_physician(alice, gilles, actor=alice.user)
    do_declare_treating_doctor(alice, personas.claire, actor=alice.user)
    signed_in(client, alice)
    for name, form in [
        ("treating_rights", {"practitioner": david.pk, "operation": "revoke"}),
        ("occupational", {"practitioner": gilles.pk, "operation": "revoke"}),
        ("treating_doctor", {"operation": "remove"}),
        ("block", {"practitioner": personas.emma.pk}),
        ("notice_preferences", {"channel": alice.preferred_channel, "new_document_notices": "on"}),
    ]:
        response = client.post(url(name), form)
        assert not response.url.startswith(url("step_up")), name
    alice.refresh_from_db()
    assert alice.treating_doctor_id is None and alice.new_document_notices
    assert not TreatingRightsGrant.objects.filter(profile=alice).exists()
    assert not OccupationalAuthorisation.objects.filter(profile=alice).exists()
    assert Block.objects.filter(profile=alice, practitioner=personas.emma).exists()


def test_a_practitioner_id_that_is_not_a_number_is_a_404(client, personas):
    signed_in(client, personas.alice)
    stepped_up(client)
    assert client.post(url("treating_rights"), {"practitioner": "abc"}).status_code == 404
    assert client.get(url("occupational") + "?practitioner=%C2%B2").status_code == 404


def test_a_throttled_step_up_answers_429_with_retry_after(client, personas, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    signed_in(client, personas.alice)
    for _ in range(2):
        response = client.post(url("step_up"), {"password": "faux-mot-de-passe", "next": url("my_data")})
        assert response.status_code == 200 and "Mot de passe incorrect." in text(response)
    response = client.post(url("step_up"), {"password": personas.password, "next": url("my_data")})
    assert response.status_code == 429  # even the right password, until the counter lapses
    assert 0 < int(response["Retry-After"]) <= settings.CARNET_LOGIN_WINDOW_SECONDS
    assert "Trop de tentatives" in text(response)
    assert client.get(url("unblock", personas.hugo.pk)).url.startswith(url("step_up"))  # not stepped up
