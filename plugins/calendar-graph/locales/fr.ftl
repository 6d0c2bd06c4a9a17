# Traduction française du plugin Microsoft 365 (Microsoft Graph).
# Identifiants : voir docs/writing-a-plugin.md (« Traductions ») ; vocabulaire de la
# documentation française de Microsoft (ID de locataire, ID d'application, secret client).

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance de calendrier Microsoft 365 (Microsoft Graph).
tenant_id = ID de locataire
    .description = ID d'annuaire (locataire) de votre organisation Microsoft 365 : un GUID ou un domaine tel que contoso.onmicrosoft.com.
client_id = Identifiant client
    .description = ID d'application (client) de l'inscription d'application Entra ID. Elle doit disposer de l'autorisation d'application Microsoft Graph Calendars.ReadWrite, avec le consentement administrateur.
client_secret = Secret client
    .description = Un secret client de cette inscription d'application (la valeur du secret, pas son ID).
authority_url = Autorité
    .description = Racine de la plateforme d'identités Microsoft ; les jetons sont demandés à {"{"}autorité{"}"}/{"{"}ID de locataire{"}"}/oauth2/v2.0/token. Ne la modifiez que pour un cloud national (par exemple https://login.microsoftonline.us) ou un serveur de test.
graph_url = URL de Graph
    .description = Adresse de base de Microsoft Graph v1.0. Ne la modifiez que pour un cloud national (par exemple https://graph.microsoft.us/v1.0) ou un serveur de test.
test_mailbox = Boîte aux lettres de test
    .description = L'adresse d'une boîte aux lettres existante dont le test de connexion ouvre le calendrier ; choisissez-en une dans laquelle la synchronisation écrira, afin qu'une stratégie d'accès aux applications qui l'exclut apparaisse dès le test.
time_zone = Fuseau horaire des rendez-vous sur la journée
    .description = Le fuseau horaire dont les minuits bornent les rendez-vous sur la journée entière (de minuit à minuit, par exemple du 2025-03-04T00:00:00+01:00 au 2025-03-05T00:00:00+01:00), sous son nom Windows (Romance Standard Time) ou IANA (Europe/Paris). Les autres rendez-vous sont écrits avec des heures UTC explicites, qu'Outlook affiche dans le fuseau de chaque lecteur.
max_concurrency = Boîtes aux lettres simultanées
    .description = Nombre de boîtes aux lettres qu'une synchronisation traite en même temps, de 1 à 20. Chaque boîte reçoit une requête à la fois, bien en dessous de la limite de Graph de 4 requêtes simultanées par boîte aux lettres.
timeout_secs = Délai d'attente (secondes)
    .description = Durée d'attente maximale de chaque réponse de Microsoft Graph avant d'abandonner.

## Test de connexion

step-check-configuration = Vérifier la configuration
step-get-token = Obtenir un jeton
step-open-calendar = Ouvrir le calendrier
step-check-permission = Vérifier l'autorisation
step-run-test-routine = Exécuter le test

# Résumé d'un test réussi ; les variables entre accolades viennent du test.
summary-ok = Microsoft Graph répond à { $url } ; le calendrier de { $mailbox } peut être synchronisé
