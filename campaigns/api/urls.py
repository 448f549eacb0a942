"""/api/v1/ routes for campaigns, enrolments (contact campaigns) and a contact's enrolments."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from campaigns.api.views import CampaignViewSet, ContactCampaignViewSet, ContactEnrolmentsView

router = SimpleRouter(trailing_slash=False)
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("contact-campaigns", ContactCampaignViewSet, basename="contact-campaign")

urlpatterns = [
    path("contacts/<int:contact_id>/campaigns", ContactEnrolmentsView.as_view(), name="contact-enrolments"),
    *router.urls,
]
