"""« Qui peut voir mon dossier » (A3, A5, A6, A7): blocks, treating doctor, emergency opt-out, occupational
physicians, the directory, the summary; unblocking after the step-up re-check."""

import pytest

from access_control.api import find_profile, visible_documents
from access_control.models import Block, OccupationalAuthorisation, TrailEntry
from tests.portal_fixtures import _fresh_cache, signed_in, stepped_up, text, url  # noqa: F401

pytestmark = pytest.mark.django_db


def test_privacy_page_summarises_the_settings_and_pins_its_queries(client, personas, django_assert_num_queries):
    signed_in(client, personas.alice)
    client.get(url("privacy"))
    with django_assert_num_queries(13):
        page = client.get(url("privacy") + "?name=ber")
    content = text(page)
    assert "Votre médecin traitant est Dr Claire Dubois" in content
    assert "Vous avez bloqué 1 professionnel" in content
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
    from records.second_factors import do_issue_backup_codes

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
    assert find_profile(gilles, nir=alice.nir, birth_date=alice.birth_date) is None
    client.post(url("occupational"), {"practitioner": gilles.pk})
    assert OccupationalAuthorisation.objects.filter(profile=alice, practitioner=gilles).exists()
    assert find_profile(gilles, nir=alice.nir, birth_date=alice.birth_date) is not None
    client.post(url("occupational"), {"practitioner": gilles.pk, "operation": "revoke"})
    assert not OccupationalAuthorisation.objects.filter(profile=alice).exists()
    response = client.post(url("occupational"), {"practitioner": personas.david.pk}, follow=True)
    assert "Seul un médecin du travail" in text(response)


def test_a_representative_restricts_a_childs_record__L10_A5(client, personas):
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    client.post(url("block"), {"practitioner": personas.david.pk})
    assert Block.objects.filter(profile=personas.fanny, practitioner=personas.david).exists()
    assert not Block.objects.filter(profile=personas.alice, practitioner=personas.david).exists()


def test_a_never_activated_childs_profile_cannot_block_until_activated__L4_L10(client, personas):
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
