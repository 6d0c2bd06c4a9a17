# Traduction française du plugin Tesseract (lecture locale des justificatifs).
# Identifiants : voir docs/writing-a-plugin.md (« Traductions ») ; vocabulaire de la
# documentation de Tesseract (segmentation de page, données de langue).

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance Tesseract de lecture des justificatifs de dépense.
ocr_enabled = OCR actif
    .description = Indique si cette instance lit les justificatifs envoyés depuis le portail des notes de frais et l'application mobile. Désactivé, toute demande d'OCR qui lui est adressée est refusée et l'utilisateur technique de l'ERP n'est pas obligatoire.
languages = Langues
    .description = Codes de langue Tesseract séparés par `+`, la plus fréquente en premier, par exemple `fra+eng`. Les données de chacune doivent être installées sur cette machine (Debian : paquets tesseract-ocr-fra, tesseract-ocr-eng…) ; le test de connexion liste celles qui le sont.
engine_path = Chemin du moteur
    .description = Chemin complet du programme `tesseract`, seulement s'il n'est pas dans le PATH de l'hôte, par exemple `/opt/tesseract/bin/tesseract`. Laissez vide pour utiliser celui du PATH.
page_segmentation = Segmentation de la page
    .description = Comment Tesseract repère le texte dans l'image. Un ticket de caisse est une colonne de lignes de tailles variables : gardez « Une seule colonne » sauf si les photos de tickets froissés sont mal lues ; essayez alors « Texte épars ».
    .choice-single_column = Une seule colonne de texte de tailles variables (tickets de caisse, recommandé)
    .choice-auto = Entièrement automatique (plusieurs colonnes, comme sur les factures)
    .choice-single_block = Un seul bloc de texte uniforme
    .choice-sparse_text = Texte épars, le plus possible sans ordre particulier (photos froissées ou partielles)
min_confidence = Confiance minimale (%)
    .description = Une valeur lue avec une confiance inférieure est renvoyée vide (sa confiance reste indiquée), afin que le formulaire de note de frais interroge l'utilisateur plutôt que de se fier à une lecture douteuse. 0 conserve tout.
timeout_secs = Délai d'attente (secondes)
    .description = Temps dont dispose le moteur pour lire un document avant d'être arrêté. Une photo prise au téléphone demande d'une à cinq secondes.
erp_user = Utilisateur technique de l'ERP
    .description = L'utilisateur de l'ERP enregistré sur chaque note de frais créée par OCR, afin que l'historique de l'ERP distingue les saisies par OCR des saisies manuelles. Renvoyé avec chaque lecture dans `recorded_by`.

## Test de connexion

step-configuration = Configuration
step-check-configuration = Vérifier la configuration
step-find-engine = Trouver le moteur
step-check-version = Vérifier la version
step-languages = Langues
step-self-check = Autocontrôle
step-run-test-routine = Exécuter le test

# Résumé d'un test réussi ; les variables entre accolades viennent du test.
summary-ok = Tesseract { $version } lit les justificatifs sur cette machine ({ $languages }, psm { $psm })
