# Traduction française du plugin Mindee (notes de frais).
# Identifiants : voir docs/writing-a-plugin.md (« Traductions ») ; vocabulaire de la
# documentation de Mindee (clé d'API, modèle, ID du modèle).

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance Mindee de lecture des justificatifs de dépense.
ocr_enabled = OCR actif
    .description = Interrupteur général de la fonction OCR. Désactivé, le portail des notes de frais et l'application mobile ne proposent plus de lire les justificatifs et toute demande d'OCR est refusée.
mindee_enabled = Mindee actif
    .description = Indique si Mindee lit les justificatifs envoyés depuis le portail des notes de frais et l'application mobile. Désactivé, les demandes d'OCR adressées à cette instance sont refusées et les identifiants ci-dessous ne sont pas obligatoires.
api_version = Version de l'API
    .description = La génération de l'API Mindee. Les nouveaux comptes Mindee reçoivent des clés d'API v2 (app.mindee.com) : choisissez v2 et indiquez l'ID du modèle. La v1 (platform.mindee.com, clés `Token`) est conservée pour les comptes créés avant la V2 ; une instance enregistrée sans ce champ est une instance v1.
    .choice-v2 = API v2 (comptes sur app.mindee.com)
    .choice-v1 = API v1 (anciens comptes sur platform.mindee.com)
url = URL de connexion
    .description = URL de base du service web de Mindee. Laissez vide pour celui de Mindee : https://api-v2.mindee.net pour l'API v2, https://api.mindee.net/v1 pour l'API v1 (sans le chemin du produit). Ne la modifiez que pour un proxy ou un serveur de test.
token = Clé d'API Mindee
    .description = La clé d'API de votre compte Mindee. API v2 : la clé de app.mindee.com (API keys), envoyée telle quelle dans l'en-tête Authorization. API v1 : la clé de platform.mindee.com, envoyée sous la forme `Token …`. Dans les deux cas, collez la clé seule.
model_id = ID du modèle (API v2)
    .description = L'ID de votre modèle de justificatifs de dépense ou de documents financiers sur app.mindee.com (un UUID tel que 94340559-b994-45e6-8b5c-be626027f1b2, affiché sur la page du modèle). Obligatoire avec l'API v2 ; inutilisé en v1.
product_version = Version du produit (API v1)
    .description = La version du modèle de justificatifs de dépense de Mindee qui lit les documents avec l'API v1. La version 5 lit davantage de champs (adresse, téléphone et immatriculations du fournisseur, numéro du ticket, lignes de détail) ; la version 4 reste acceptée pour les comptes qui l'utilisent encore. Inutilisée avec l'API v2, où l'ID du modèle désigne le modèle.
    .choice-v5 = Justificatifs de dépense v5 (recommandée)
    .choice-v4 = Justificatifs de dépense v4 (anciens comptes)
timeout_secs = Délai d'attente (secondes)
    .description = Durée d'attente maximale de la réponse de Mindee à une requête. La lecture d'un justificatif prend en général d'une à cinq secondes. Gardez le nombre de tentatives multiplié par le délai sous deux minutes, le temps que l'hôte accorde à un appel.
retry_attempts = Tentatives
    .description = Nombre d'envois d'une requête quand Mindee répond qu'il est surchargé ou en erreur (HTTP 429 et 5xx) ou ne répond pas à temps. 1 signifie aucune nouvelle tentative.
retry_delay_secs = Délai entre deux tentatives (secondes)
    .description = Temps d'attente avant de renvoyer une requête. Un en-tête Retry-After de Mindee l'emporte.
erp_user = Utilisateur technique de l'ERP
    .description = L'utilisateur de l'ERP enregistré sur chaque note de frais créée par OCR, afin que l'historique de l'ERP distingue les saisies par OCR des saisies manuelles. Renvoyé avec chaque lecture dans `recorded_by`.
erp_password = Mot de passe de l'utilisateur technique de l'ERP
    .description = Le mot de passe de l'utilisateur technique de l'ERP, conservé chiffré pour le côté ERP qui crée les notes de frais. Il n'est jamais envoyé à Mindee ni affiché.

## Test de connexion

step-configuration = Configuration
step-check-configuration = Vérifier la configuration
step-authenticate = S'authentifier
step-reach-api = Joindre l'API
step-find-model = Trouver le modèle
step-find-product = Trouver le produit
step-plan-and-quota = Abonnement et quota
step-run-test-routine = Exécuter le test

# Résumés d'un test réussi ; les variables entre accolades viennent du test.
summary-ok-v1 = Le modèle de justificatifs de dépense Mindee { $product } est joignable à { $url } et accepte la clé (vérifié sans consommer de prédiction)
summary-ok-v2 = L'API v2 de Mindee est joignable à { $url }, accepte la clé et connaît le modèle { $model } (vérifié en listant les modèles : aucun document lu, aucune page facturée)
