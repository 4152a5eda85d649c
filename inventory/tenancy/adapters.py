"""django-allauth adapters: Google sign-in for people an admin created or invited, nobody else.

There is no open sign-up. A Google login is linked to the existing user with the same verified
e-mail address (``SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT``); when an organisation lists
allowed e-mail domains, a login from another domain is refused for that user's memberships.
"""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.http import HttpResponseForbidden

from inventory.models import Membership


class ClosedAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False


def email_domain_allowed(user, email: str) -> bool:
    """False when any of the user's organisations restricts sign-in to other domains."""
    domain = email.rsplit("@", 1)[-1].lower()
    for membership in Membership.unscoped.filter(user=user, is_active=True).select_related("org"):
        allowed = [d.lower() for d in membership.org.allowed_email_domains or []]
        if allowed and domain not in allowed:
            return False
    return True


class InvitedOnlySocialAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin):
        return False

    def pre_social_login(self, request, sociallogin):
        user = sociallogin.user
        email = next((a.email for a in sociallogin.email_addresses if a.verified), None)
        if user and user.pk and email and not email_domain_allowed(user, email):
            raise ImmediateHttpResponse(
                HttpResponseForbidden("Sign-in from this e-mail domain is not allowed.")
            )
