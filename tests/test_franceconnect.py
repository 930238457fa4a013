"""FranceConnect on the patient door, against a real OpenID provider on loopback (issue 17, item 3).

npm ``oidc-provider`` poses as FranceConnect (tests/oidc_fixtures.py) and attests a pivot identity; Django's test
client presses the button, the provider's form is posted over HTTP, authlib checks the answer for real.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from access_control.models import TrailEntry
from accounts.auth import PROVIDER_SESSION_KEY
from accounts.models import FranceConnectLink
from records.account_actions import PortalAction
from records.actions import do_enrol_profile
from records.identifiers import make_nir
from records.models import Profile, User
from tests.oidc_fixtures import FC_IDENTITIES, client_sign_in

pytestmark = pytest.mark.django_db

START = "/connexion/franceconnect/"


def fc_sign_in(client, provider, login, acr="eidas2", **kwargs):
    return client_sign_in(client, provider, START, login=login, acr=acr, **kwargs)


def signed_in_patient(client):
    return client.get(reverse("patients:dashboard")).status_code == 200


def test_franceconnect_plus_signs_in_and_links_the_account_once__T1(client, personas, fc_provider):
    response = fc_sign_in(client, fc_provider, "alice", acr="eidas2")
    assert response.status_code == 302 and response["Location"] == reverse("patients:dashboard")
    assert signed_in_patient(client)
    assert client.session[PROVIDER_SESSION_KEY]["acr"] == "eidas2"
    link = FranceConnectLink.objects.get(user=personas.alice.user)
    linked = TrailEntry.objects.filter(profile=personas.alice, action=PortalAction.FRANCECONNECT_LINKED)
    assert linked.count() == 1 and linked.get().actor_user_id == personas.alice.user_id
    client.post(reverse("patients:logout"))
    fc_sign_in(client, fc_provider, "alice", acr="eidas3")  # the link now: no second link, no second entry
    assert signed_in_patient(client)
    assert FranceConnectLink.objects.get(user=personas.alice.user) == link and linked.count() == 1


def test_eidas1_still_asks_carnets_second_factor(client, personas, fc_provider, mailoutbox):
    response = fc_sign_in(client, fc_provider, "alice", acr="eidas1")
    assert response["Location"] == reverse("patients:verify")
    assert not signed_in_patient(client)
    assert len(mailoutbox) == 1  # no authenticator app: the code goes by e-mail, as after a password


def test_a_profile_never_activated_is_activated_by_franceconnect__L4(client, personas, fc_provider):
    response = fc_sign_in(client, fc_provider, "bernard", acr="eidas2")
    assert response["Location"] == reverse("patients:dashboard") and signed_in_patient(client)
    bernard = Profile.objects.get(pk=personas.bernard.pk)
    assert bernard.state == Profile.State.ACTIVE and bernard.user is not None
    assert not bernard.user.has_usable_password()
    assert FranceConnectLink.objects.filter(user=bernard.user).exists()
    actions = set(TrailEntry.objects.filter(profile=bernard).values_list("action", flat=True))
    assert {"activation", PortalAction.FRANCECONNECT_LINKED} <= actions


def test_an_activation_at_eidas1_goes_on_to_enrol_a_second_factor__L4(client, personas, fc_provider):
    response = fc_sign_in(client, fc_provider, "bernard", acr="eidas1")
    assert response["Location"] == reverse("patients:activation_second_factor")
    assert client.get(response["Location"]).status_code == 200
    assert not signed_in_patient(client)


def _twin_of_alice(alice):
    """A second profile with Alice's identity traits (another NIR): FranceConnect cannot tell them apart."""
    do_enrol_profile(
        nir=make_nir("2850375114999"),
        birth_name=alice.birth_name,
        first_names=alice.first_names,
        birth_date=alice.birth_date,
        sex=alice.sex,
        actor=None,
    )


def test_no_match_and_several_matches_get_the_same_answer_and_the_same_work(client, personas, fc_provider):
    """The refusal points to the provisional-code activation and never tells whether a profile exists."""
    users, links = User.objects.count(), FranceConnectLink.objects.count()
    with CaptureQueriesContext(connection) as none_queries:
        none = fc_sign_in(client, fc_provider, "inconnue")
    _twin_of_alice(personas.alice)
    with CaptureQueriesContext(connection) as several_queries:
        several = fc_sign_in(client, fc_provider, "alice")
    assert none["Location"] == several["Location"] == reverse("patients:franceconnect_refused")
    assert len(none_queries) == len(several_queries)
    page = client.get(none["Location"]).content.decode()
    assert reverse("patients:activation") in page and "code provisoire" in page
    assert (User.objects.count(), FranceConnectLink.objects.count()) == (users, links)
    assert not signed_in_patient(client)


def test_an_opposed_profile_gets_the_same_refusal__L2(client, personas, fc_provider):
    Profile.objects.filter(pk=personas.bernard.pk).update(state=Profile.State.OPPOSED)
    response = fc_sign_in(client, fc_provider, "bernard")
    assert response["Location"] == reverse("patients:franceconnect_refused")
    assert not FranceConnectLink.objects.exists()


def test_unlinking_is_traced_and_needs_a_password_to_fall_back_on__T1(client, personas, fc_provider):
    fc_sign_in(client, fc_provider, "alice")
    assert "Ne plus utiliser FranceConnect" in client.get(reverse("patients:franceconnect_account")).content.decode()
    client.post(reverse("patients:franceconnect_account"))
    assert not FranceConnectLink.objects.exists()
    unlinked = TrailEntry.objects.filter(profile=personas.alice, action=PortalAction.FRANCECONNECT_UNLINKED)
    assert unlinked.count() == 1
    client.post(reverse("patients:logout"))
    fc_sign_in(client, fc_provider, "bernard")  # activated by FranceConnect: no password yet
    response = client.post(reverse("patients:franceconnect_account"), follow=True)
    assert "pas encore de mot de passe" in response.content.decode()
    assert FranceConnectLink.objects.count() == 1


def test_sign_out_goes_through_franceconnects_end_session(client, personas, fc_provider):
    fc_sign_in(client, fc_provider, "alice")
    response = client.post(reverse("patients:logout"))
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}" == fc_provider.issuer
    assert parse_qs(url.query)["post_logout_redirect_uri"] == ["http://testserver/connexion/franceconnect/deconnecte/"]
    assert not signed_in_patient(client)


def test_cancelling_at_franceconnect_says_so(client, personas, fc_provider):
    response = fc_sign_in(client, fc_provider, "alice", cancel=True)
    assert response["Location"] == reverse("patients:login")
    assert "Connexion par FranceConnect annulée" in client.get(response["Location"]).content.decode()


def test_the_buttons_show_only_when_franceconnect_is_configured(client, settings, db):
    for page in ("patients:login", "patients:activation"):
        assert "FranceConnect" not in client.get(reverse(page)).content.decode()
    settings.CARNET_FRANCECONNECT = {**settings.CARNET_FRANCECONNECT, "issuer": "https://fc.example", "client_id": "c"}
    assert "S'identifier avec FranceConnect" in client.get(reverse("patients:login")).content.decode()
    assert "Activer avec FranceConnect" in client.get(reverse("patients:activation")).content.decode()


def test_no_identity_reaches_the_logs(client, personas, fc_provider, caplog):
    """Names, birth date and place, e-mail: none of the pivot identity is logged, whatever the outcome."""
    caplog.set_level("DEBUG")
    fc_sign_in(client, fc_provider, "bernard", acr="eidas1")  # an activation
    client.post(reverse("patients:logout"))
    fc_sign_in(client, fc_provider, "inconnue")  # a refusal
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Sign-in" in logged or "activated" in logged  # the flow did log, by ids
    for identity in (FC_IDENTITIES["bernard"], FC_IDENTITIES["inconnue"]):
        for value in identity.values():
            assert value not in logged, value
