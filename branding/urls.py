from django.urls import path

from branding import views

app_name = "branding"

urlpatterns = [
    path("brand.css", views.brand_css, name="css"),
    path("logo", views.logo, name="logo"),
    path("logo/<uuid:code>", views.customer_logo, name="customer_logo"),
]
