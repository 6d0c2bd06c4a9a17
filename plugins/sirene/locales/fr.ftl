# Traduction française du plugin INSEE Sirene.
# Identifiants : voir docs/writing-a-plugin.md (« Traductions »). Le texte anglais vient des
# commentaires de documentation du code ; `passerelle plugin translations sirene --lang fr`
# liste ce qui manque.

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance INSEE Sirene.
enabled = Activée
    .description = Indique si cette instance répond aux recherches d'entreprises. Désactivez-la pour suspendre les recherches sans perdre le reste de la configuration ; le test de connexion reste possible.
auth_mode = Authentification
    .description = Comment Passerelle s'identifie auprès de l'INSEE : une clé d'API obtenue sur le portail (portail-api.insee.fr). OAuth2 ne figure dans la liste que pour que les instances enregistrées avec ce mode se chargent : l'INSEE a fermé cette passerelle le 10 septembre 2025 et ce mode est refusé.
    .choice-api_key = Clé d'API (portail de l'INSEE)
    .choice-oauth2 = Identifiants client OAuth2 (fermé le 10 septembre 2025, refusé)
api_key = Clé d'API
    .description = La clé de votre application abonnée à l'API Sirene sur le portail de l'INSEE (portail-api.insee.fr), envoyée dans l'en-tête X-INSEE-Api-Key-Integration. Ce n'est pas le jeton d'accès (« Jeton ») de l'ancienne passerelle : celui-ci est refusé.
client_id = Identifiant client (abandonné)
    .description = La clé consommateur d'une application sur l'ancienne passerelle OAuth2 de l'INSEE, désormais fermée. Elle n'est plus utilisée et n'est conservée que pour que les anciennes instances se chargent. Laissez ce champ vide.
client_secret = Secret client (abandonné)
    .description = Le secret consommateur d'une application sur l'ancienne passerelle OAuth2 de l'INSEE, désormais fermée. Il n'est plus utilisé et n'est conservé que pour que les anciennes instances se chargent. Laissez ce champ vide.
token_url = URL du jeton (abandonnée)
    .description = Le point d'accès de jeton de l'ancienne passerelle OAuth2 de l'INSEE, désormais fermée. Elle n'est plus utilisée et n'est conservée que pour que les anciennes instances se chargent.
base_url = URL de base de l'API
    .description = Racine des points d'accès de l'API Sirene 3.11 du portail de l'INSEE.
timeout_secs = Délai d'attente (secondes)
    .description = Durée d'attente maximale de chaque réponse de l'INSEE avant d'abandonner.

## Test de connexion

step-check-configuration = Vérifier la configuration
step-reach-service = Joindre le service
step-service-state = État du service
step-data-freshness = Fraîcheur des données
step-run-test-routine = Exécuter le test

# Détails et résumé ; les variables entre accolades viennent du test.
reach-service-ok = { $url } a répondu
summary-up-with-data = Sirene { $version } est en service (UP), données du { $day }
summary-up = Sirene { $version } est en service (UP)
