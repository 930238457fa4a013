"""The patient API's privacy settings: blocks, granted rights, the treating doctor and emergency access.

Rules A5 (blocks), A3 and A4 (granted rights), A6 (treating doctor) and A7 (emergency access).

Every change here is sensitive: it needs a portal session with a fresh step-up (``require_step_up``), never a
bearer token.
"""

from collections.abc import Callable

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from access_control.actions import (
    do_authorise_occupational_physician,
    do_block_practitioner,
    do_declare_treating_doctor,
    do_grant_treating_rights,
    do_remove_treating_doctor,
    do_revoke_occupational_physician,
    do_revoke_treating_rights,
    do_set_emergency_opt_out,
    do_unblock_practitioner,
)
from access_control.models import (
    Block,
    OccupationalAuthorisation,
    PractitionerGrant,
    TreatingRightsGrant,
)
from patients.api import ERRORS, TAG, PatientView, PractitionerNotFound
from patients.serializers import (
    BlockSerializer,
    EmergencyAccessSerializer,
    PractitionerGrantSerializer,
    PractitionerRefSerializer,
    ProfileSerializer,
)
from practitioners.models import Practitioner


def _practitioner(rpps: str) -> Practitioner:
    practitioner = Practitioner.objects.select_related("profession").filter(rpps=rpps).first()
    if practitioner is None:
        raise PractitionerNotFound()
    return practitioner


@extend_schema(tags=[TAG])
class Blocks(PatientView):
    """A5: the practitioners this profile blocks; POST blocks one more (by RPPS)."""

    serializer_class = BlockSerializer

    @extend_schema(responses={200: BlockSerializer(many=True), **ERRORS})
    def get(self, request, profile_id):
        profile = self.profile()
        blocks = Block.objects.filter(profile=profile).select_related("practitioner__profession").order_by("pk")
        return Response(BlockSerializer(blocks, many=True).data)

    @extend_schema(request=PractitionerRefSerializer, responses={201: BlockSerializer, **ERRORS})
    def post(self, request, profile_id):
        profile = self.profile()
        data = PractitionerRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        block = do_block_practitioner(profile, _practitioner(data.validated_data["rpps"]), actor=request.user)
        return Response(BlockSerializer(block).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[TAG])
class BlockDetail(PatientView):
    """A5: lift a block. Sensitive: a portal session with a fresh step-up re-check, as in the portal."""

    step_up_methods = frozenset({"DELETE"})

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, profile_id, rpps):
        profile = self.profile()
        do_unblock_practitioner(profile, _practitioner(rpps), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _PractitionerGrants(PatientView):
    """The practitioners the profile gave one kind of right to (``model``); POST gives it to one more (by RPPS)."""

    model: type[PractitionerGrant]
    give: Callable
    serializer_class = PractitionerGrantSerializer
    step_up_methods = frozenset({"POST"})  # granting widens access: sensitive

    @extend_schema(responses={200: PractitionerGrantSerializer(many=True), **ERRORS})
    def get(self, request, profile_id):
        profile = self.profile()
        grants = (
            self.model._default_manager.filter(profile=profile)
            .select_related("practitioner__profession")
            .order_by("pk")
        )
        return Response(PractitionerGrantSerializer(grants, many=True).data)

    @extend_schema(request=PractitionerRefSerializer, responses={201: PractitionerGrantSerializer, **ERRORS})
    def post(self, request, profile_id):
        profile = self.profile()
        data = PractitionerRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grant = type(self).give(profile, _practitioner(data.validated_data["rpps"]), actor=request.user)
        return Response(PractitionerGrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class _PractitionerGrantDetail(PatientView):
    """Withdraw one practitioner's right. No step-up re-check, unlike lifting a block: this only narrows access."""

    withdraw: Callable

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, profile_id, rpps):
        type(self).withdraw(self.profile(), _practitioner(rpps), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[TAG])
class TreatingRights(_PractitionerGrants):
    """List the practitioners granted the treating doctor's rights, or grant them to one more by RPPS (A4).

    Those practitioners read masked documents.
    """

    model = TreatingRightsGrant
    give = staticmethod(do_grant_treating_rights)


@extend_schema(tags=[TAG])
class TreatingRightsDetail(_PractitionerGrantDetail):
    """A4: withdraw the rights granted. No step-up re-check, unlike lifting a block: this only narrows access."""

    withdraw = staticmethod(do_revoke_treating_rights)


@extend_schema(tags=[TAG])
class OccupationalAuthorisations(_PractitionerGrants):
    """List the occupational physicians authorised to read the record, or authorise one more by RPPS (A3).

    The patient authorises them expressly; only an occupational physician can be authorised.
    """

    model = OccupationalAuthorisation
    give = staticmethod(do_authorise_occupational_physician)


@extend_schema(tags=[TAG])
class OccupationalAuthorisationDetail(_PractitionerGrantDetail):
    """A3: withdraw the authorisation (revocable at any time)."""

    withdraw = staticmethod(do_revoke_occupational_physician)


@extend_schema(tags=[TAG])
class TreatingDoctor(PatientView):
    """A6: PUT declares the treating doctor (by RPPS), replacing any other; DELETE removes it.

    Sensitive (step-up): the treating doctor reads masked documents and the whole trail.
    """

    serializer_class = PractitionerRefSerializer
    step_up_methods = frozenset({"PUT"})

    @extend_schema(request=PractitionerRefSerializer, responses={200: ProfileSerializer, **ERRORS})
    def put(self, request, profile_id):
        profile = self.profile()
        data = PractitionerRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        do_declare_treating_doctor(profile, _practitioner(data.validated_data["rpps"]), actor=request.user)
        return self.profile_response()

    @extend_schema(request=None, responses={200: ProfileSerializer, **ERRORS})
    def delete(self, request, profile_id):
        do_remove_treating_doctor(self.profile(), actor=request.user)
        return self.profile_response()


@extend_schema(tags=[TAG])
class EmergencyAccess(PatientView):
    """A7: refuse (``opt_out: true``) or accept again emergency access to the record (sensitive either way)."""

    serializer_class = EmergencyAccessSerializer
    step_up_methods = frozenset({"PUT"})

    @extend_schema(request=EmergencyAccessSerializer, responses={200: ProfileSerializer, **ERRORS})
    def put(self, request, profile_id):
        profile = self.profile()
        data = EmergencyAccessSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        do_set_emergency_opt_out(profile, data.validated_data["opt_out"], actor=request.user)
        return self.profile_response()
