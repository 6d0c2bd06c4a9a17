# Traduction française du plugin Microsoft Exchange (EWS).
# Identifiants : voir docs/writing-a-plugin.md (« Traductions ») ; vocabulaire de la
# documentation française d'Exchange (emprunt d'identité, délégué, boîte aux lettres).

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance Microsoft Exchange (EWS).
username = Utilisateur délégué
    .description = Identifiant de l'utilisateur technique Exchange (utilisateur@domaine ou DOMAINE\utilisateur), utilisé avec l'authentification de base ou Windows (NTLM) quand OAuth est désactivé. Sans emprunt d'identité, il doit avoir un accès délégué (Éditeur) aux calendriers qu'il synchronise.
password = Mot de passe
    .description = Mot de passe de l'utilisateur délégué (authentification de base ou Windows, quand OAuth est désactivé).
auth_method = Méthode d'authentification
    .description = Comment l'utilisateur délégué se connecte quand OAuth est désactivé. L'authentification Windows (NTLM) est celle qu'accepte habituellement un répertoire virtuel EWS sur site (Negotiate/NTLM, authentification de base désactivée) ; l'authentification de base exige que BasicAuthentication y soit activé. Exchange Online n'accepte ni l'une ni l'autre : utilisez OAuth ou, mieux, le plugin calendar-graph.
    .choice-basic = Authentification de base
    .choice-ntlm = Authentification Windows (NTLM)
ews_url = URL EWS
    .description = Adresse du point d'accès Exchange Web Services, par exemple https://outlook.office365.com/EWS/Exchange.asmx pour Exchange Online ou https://mail.example.com/EWS/Exchange.asmx pour un serveur sur site.
server_version = Version du serveur Exchange
    .description = La version de schéma demandée dans RequestServerVersion. Choisissez la version de votre serveur ou une plus ancienne : un serveur refuse une version plus récente (ErrorInvalidServerVersion). Exchange 2013 SP1 convient à Exchange 2013, 2016, 2019 et Exchange Online ; choisissez Exchange 2010 SP2 ou plus ancien pour un serveur Exchange 2010.
    .choice-Exchange2007_SP1 = Exchange 2007 SP1
    .choice-Exchange2010 = Exchange 2010
    .choice-Exchange2010_SP1 = Exchange 2010 SP1
    .choice-Exchange2010_SP2 = Exchange 2010 SP2
    .choice-Exchange2013 = Exchange 2013
    .choice-Exchange2013_SP1 = Exchange 2013 SP1 (aussi Exchange 2016, 2019 et Exchange Online)
    .choice-Exchange2016 = Exchange 2016 (aussi Exchange 2019 et Exchange Online)
max_threads = Nombre maximal de threads
    .description = Nombre de boîtes aux lettres qu'une synchronisation traite en même temps, de 1 à 27 (par défaut, Exchange autorise un compte à ouvrir 27 connexions EWS simultanées).
office365_mode = Mode optimisé Office 365
    .description = Pour Exchange Online : envoie X-AnchorMailbox avec chaque appel en emprunt d'identité, afin que la requête aille directement au serveur de cette boîte aux lettres, et attend plus longtemps et plus souvent quand Exchange limite le débit (ErrorServerBusy avec BackOffMilliseconds). X-AnchorMailbox est toujours envoyé avec OAuth.
use_impersonation = Utiliser l'emprunt d'identité
    .description = Agir en tant que propriétaire de chaque boîte aux lettres (en-tête ExchangeImpersonation) au lieu d'ouvrir son calendrier en tant que délégué. L'emprunt d'identité par le rôle RBAC ApplicationImpersonation est réservé aux serveurs sur site (New-ManagementRoleAssignment -Role ApplicationImpersonation -User suivi de l'utilisateur délégué) : Exchange Online a retiré ce rôle en février 2025. Avec OAuth, chaque appel emprunte l'identité de sa boîte aux lettres, quel que soit ce réglage.
test_mailbox = Boîte aux lettres de test
    .description = L'adresse d'une boîte aux lettres existante dont le test de connexion ouvre le calendrier (obligatoire avec l'emprunt d'identité ou OAuth ; sans eux, c'est le calendrier de l'utilisateur délégué qui est ouvert quand ce champ est vide).
use_oauth = Utiliser OAuth (Exchange 365 uniquement)
    .description = S'authentifier en tant qu'application Entra ID (Azure AD) avec le flux client credentials au lieu du mot de passe de l'utilisateur délégué. L'application doit disposer de l'autorisation d'application Office 365 Exchange Online full_access_as_app, avec le consentement administrateur.
tenant_id = ID de locataire
    .description = ID d'annuaire (locataire) de votre organisation Microsoft 365 : un GUID ou un domaine tel que contoso.onmicrosoft.com (OAuth uniquement).
client_id = Identifiant client
    .description = ID d'application (client) de l'inscription d'application Entra ID (OAuth uniquement).
client_secret = Secret client
    .description = Un secret client de cette inscription d'application (OAuth uniquement).
authority_url = Autorité
    .description = Racine de la plateforme d'identités Microsoft ; les jetons sont demandés à {"{"}autorité{"}"}/{"{"}ID de locataire{"}"}/oauth2/v2.0/token. Ne la modifiez que pour un cloud national (par exemple https://login.microsoftonline.us) ou un serveur de test.
time_zone = Fuseau horaire des rendez-vous
    .description = Identifiant de fuseau horaire Windows (tel que Get-TimeZone -ListAvailable l'affiche, par exemple Romance Standard Time pour Paris, W. Europe Standard Time pour Berlin, Eastern Standard Time) écrit sur les éléments créés et envoyé comme TimeZoneContext de chaque requête, afin qu'Outlook affiche dans ce fuseau les rendez-vous, leurs règles de périodicité et les rendez-vous sur la journée entière. Exige Exchange 2010 SP1 ou ultérieur ; ignoré avec les versions de serveur plus anciennes.
timeout_secs = Délai d'attente (secondes)
    .description = Durée d'attente maximale de chaque réponse d'Exchange avant d'abandonner.

## Test de connexion

step-check-configuration = Vérifier la configuration
step-get-token = Obtenir un jeton
step-reach-ews = Joindre EWS
step-open-calendar = Ouvrir le calendrier
step-run-test-routine = Exécuter le test

# Résumés d'un test réussi ; les variables entre accolades viennent du test.
summary-ok-own = Exchange répond à { $url } ; le calendrier de l'utilisateur délégué peut être synchronisé
summary-ok-delegate = Exchange répond à { $url } ; le calendrier de { $mailbox } (en tant que délégué) peut être synchronisé
summary-ok-impersonate = Exchange répond à { $url } ; le calendrier de { $mailbox } (par emprunt d'identité) peut être synchronisé
