from django.urls import path

from messaging.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("sendgrid/events", views.sendgrid_events, name="sendgrid-events"),
    path("sendgrid/inbound", views.sendgrid_inbound, name="sendgrid-inbound"),
    path("sendgrid/inbound/<str:secret>", views.sendgrid_inbound_secret_in_path, name="sendgrid-inbound-legacy"),
]
