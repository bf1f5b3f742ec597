"""HTTP API of accounts: the caller's account, tokens, organisations, members and namespaces.

Thin views: the documents are ``medigan_catalog.access``'s, the rules ``hub.access``'s, the
writes ``hub.accounts.services``'. An organisation the caller is not a member of is a ``404``,
as one that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.access import Viewer, request_viewer
from hub.accounts import selectors, services
from hub.accounts.authentication import ApiTokenAuthentication, PasswordAuthentication
from hub.accounts.models import RESERVED_NAMESPACES, ApiToken, Namespace, Organisation
from hub.api import parameters
from hub.api.errors import ApiError
from hub.api.openapi import error_responses
from hub.api.parsers import LimitedJSONParser
from medigan_catalog.access import (
    AccountInfo,
    MemberRequest,
    Membership,
    NamespaceList,
    NamespaceRequest,
    OrganisationList,
    OrganisationRequest,
    OrgRole,
    TokenCreated,
    TokenInfo,
    TokenList,
    TokenRequest,
    TokenScope,
    TokenSummary,
)
from medigan_catalog.access import Namespace as NamespaceDocument
from medigan_catalog.access import Organisation as OrganisationDocument
from medigan_catalog.errors import ErrorCode


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # the views require IsAuthenticated
    return user


def _require_admin_scope(viewer: Viewer, doing: str) -> None:
    if not viewer.has_scope(TokenScope.ADMIN):
        raise ApiError(
            ErrorCode.SCOPE_MISSING,
            f"this token lacks the 'admin' scope needed to {doing}",
            {"scope": TokenScope.ADMIN.value},
        )


def _token_info(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "name": token.name,
        "key_prefix": token.key_prefix,
        "scopes": list(token.scopes),
        "namespace": token.namespace or None,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def _organisation_document(organisation: Organisation, viewer: Viewer) -> dict[str, Any]:
    members = selectors.organisation_members(organisation)
    document = OrganisationDocument(
        name=organisation.name,
        title=organisation.title,
        role=viewer.org_roles.get(organisation.name),
        members=tuple(
            Membership(username=member.user.get_username(), role=OrgRole(member.role))
            for member in members
        ),
        created_at=organisation.created_at,
    )
    return document.model_dump(mode="json")


def _namespace_document(namespace: Namespace, viewer: Viewer) -> NamespaceDocument:
    return NamespaceDocument(
        name=namespace.name,
        user=namespace.user.get_username() if namespace.user is not None else None,
        organisation=namespace.organisation.name if namespace.organisation is not None else None,
        can_push=viewer.may_push_to(namespace.name, reserved=namespace.name in RESERVED_NAMESPACES),
    )


class AccountMeApi(APIView):
    """``GET /api/v1/me``: the caller, where they may push, and what their token allows.

    Clients push a contributor's model into ``namespace`` unless told otherwise
    (``Generators.contribute``, ``medigan-client import-medigan``); the answer is
    :class:`medigan_catalog.access.AccountInfo`.
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        user = _user(request)
        viewer = request_viewer(request)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        organisations = tuple(
            OrganisationDocument(
                name=member.organisation.name,
                title=member.organisation.title,
                role=OrgRole(member.role),
                created_at=member.organisation.created_at,
            )
            for member in selectors.organisations_of(user)
            # A token restricted to a namespace sees no other organisation of its user.
            if viewer.within_token(member.organisation.name)
        )
        info = AccountInfo(
            username=user.get_username(),
            namespace=selectors.user_default_namespace(user),
            namespaces=tuple(
                namespace.name
                for namespace in selectors.namespaces_pushable_by(user)
                if viewer.within_token(namespace.name)
            ),
            reserved_namespaces=tuple(sorted(RESERVED_NAMESPACES)),
            organisations=organisations,
            hub_reviewer=viewer.hub_reviewer,
            token=None
            if token is None
            else TokenSummary(
                id=token.pk,
                scopes=tuple(TokenScope(scope) for scope in token.scopes),
                namespace=token.namespace or None,
                expires_at=token.expires_at,
            ),
        )
        return Response(info.model_dump(mode="json"))


class TokenListApi(APIView):
    """``GET`` the caller's tokens; ``POST`` a new one (its key is in this answer only).

    ``POST`` also takes HTTP Basic with the user's password, which is how ``medigan-client
    login`` gets a first token; failed passwords count towards the per-address limit (429).
    A token that asks for a token gets one no wider than itself.
    """

    authentication_classes = [ApiTokenAuthentication, PasswordAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        tokens = [_token_info(token) for token in selectors.api_token_list(user=_user(request))]
        return Response(TokenList.model_validate({"tokens": tokens}).model_dump(mode="json"))

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        wanted = parameters.body_document(TokenRequest, request.data)
        caller = request.auth if isinstance(request.auth, ApiToken) else None
        token, raw_key = services.api_token_create(
            user=_user(request),
            name=wanted.name,
            scopes=wanted.scopes,
            namespace=wanted.namespace,
            expires_in_days=wanted.expires_in_days,
            within=caller,
        )
        created = TokenCreated.model_validate({**_token_info(token), "key": raw_key})
        response = Response(created.model_dump(mode="json"), status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class TokenDetailApi(APIView):
    """``DELETE /api/v1/tokens/<id>``: revoke one of the caller's tokens."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None, **error_responses(401, 404, 429)})
    def delete(self, request: Request, token_id: int) -> Response:
        token = selectors.api_token_list(user=_user(request)).filter(pk=token_id).first()
        if token is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"you have no token {token_id}")
        services.api_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 404, 429)})
    def get(self, request: Request, token_id: int) -> Response:
        token = selectors.api_token_list(user=_user(request)).filter(pk=token_id).first()
        if token is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"you have no token {token_id}")
        return Response(TokenInfo.model_validate(_token_info(token)).model_dump(mode="json"))


class OrganisationListApi(APIView):
    """``GET`` the caller's organisations; ``POST`` a new one, whose owner the caller becomes."""

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        viewer = request_viewer(request)
        organisations = [
            OrganisationDocument(
                name=member.organisation.name,
                title=member.organisation.title,
                role=OrgRole(member.role),
                created_at=member.organisation.created_at,
            )
            for member in selectors.organisations_of(_user(request))
            if viewer.within_token(member.organisation.name)
        ]
        listed = OrganisationList(organisations=tuple(organisations))
        return Response(listed.model_dump(mode="json"))

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 409, 429)},
    )
    def post(self, request: Request) -> Response:
        viewer = request_viewer(request)
        _require_admin_scope(viewer, "create an organisation")
        wanted = parameters.body_document(OrganisationRequest, request.data)
        organisation = services.organisation_create(
            user=_user(request), name=wanted.name, title=wanted.title
        )
        return Response(
            _organisation_document(organisation, _fresh_viewer(request)),
            status=status.HTTP_201_CREATED,
        )


def _fresh_viewer(request: Request) -> Viewer:
    """The caller's viewer read again, after a write that changed their roles."""
    from hub.access import viewer_for

    return viewer_for(request.user, request.auth)


def _organisation_of_member_or_404(request: Request, name: str) -> Organisation:
    viewer = request_viewer(request)
    organisation = selectors.organisation_get(name=name)
    if organisation is None or (viewer.role_in(name) is None and not viewer.sees_everything):
        raise ApiError(ErrorCode.NOT_FOUND, f"no organisation {name!r}")
    return organisation


class OrganisationDetailApi(APIView):
    """``GET /api/v1/organisations/<name>``: an organisation and its members, for members."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 404, 429)})
    def get(self, request: Request, name: str) -> Response:
        organisation = _organisation_of_member_or_404(request, name)
        return Response(_organisation_document(organisation, request_viewer(request)))


class OrganisationMembersApi(APIView):
    """``GET`` the members; ``POST`` adds a member or changes their role (owners)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 404, 429)})
    def get(self, request: Request, name: str) -> Response:
        organisation = _organisation_of_member_or_404(request, name)
        return Response(_organisation_document(organisation, request_viewer(request)))

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 429)},
    )
    def post(self, request: Request, name: str) -> Response:
        organisation = _organisation_of_member_or_404(request, name)
        viewer = request_viewer(request)
        _require_admin_scope(viewer, "manage an organisation's members")
        if not viewer.may_manage_organisation(name):
            raise ApiError(ErrorCode.PERMISSION_DENIED, f"only owners of {name!r} manage members")
        wanted = parameters.body_document(MemberRequest, request.data)
        member = get_user_model().objects.filter(username=wanted.username).first()
        if member is None or not member.is_active:
            raise ApiError(ErrorCode.NOT_FOUND, f"no user {wanted.username!r}")
        services.organisation_member_set(organisation=organisation, user=member, role=wanted.role)
        return Response(_organisation_document(organisation, _fresh_viewer(request)))


class OrganisationMemberApi(APIView):
    """``DELETE …/members/<username>``: remove a member (owners; members may leave)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 429)})
    def delete(self, request: Request, name: str, username: str) -> Response:
        organisation = _organisation_of_member_or_404(request, name)
        viewer = request_viewer(request)
        _require_admin_scope(viewer, "manage an organisation's members")
        leaving = username == viewer.username
        if not (leaving or viewer.may_manage_organisation(name)):
            raise ApiError(ErrorCode.PERMISSION_DENIED, f"only owners of {name!r} manage members")
        member = get_user_model().objects.filter(username=username).first()
        if member is None or not services.organisation_member_remove(
            organisation=organisation, user=member
        ):
            raise ApiError(ErrorCode.NOT_FOUND, f"{username!r} is not a member of {name!r}")
        return Response(_organisation_document(organisation, _fresh_viewer(request)))


class NamespaceListApi(APIView):
    """``GET`` the namespaces the caller may push into; ``POST`` a new one of their own."""

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        viewer = request_viewer(request)
        namespaces = tuple(
            _namespace_document(namespace, viewer)
            for namespace in selectors.namespaces_pushable_by(_user(request))
            if viewer.within_token(namespace.name)
        )
        return Response(NamespaceList(namespaces=namespaces).model_dump(mode="json"))

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 409, 429)},
    )
    def post(self, request: Request) -> Response:
        viewer = request_viewer(request)
        _require_admin_scope(viewer, "create a namespace")
        wanted = parameters.body_document(NamespaceRequest, request.data)
        namespace = services.namespace_create(user=_user(request), name=wanted.name)
        return Response(
            _namespace_document(namespace, _fresh_viewer(request)).model_dump(mode="json"),
            status=status.HTTP_201_CREATED,
        )
