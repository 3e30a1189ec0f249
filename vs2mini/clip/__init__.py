"""CLIP: model loading (the toy CLIP too), toy pretraining, preprocessing, features (DINOv2 too), deeper layers.
Never imports vs2mini.method, vs2mini.tables or vs2mini.teach."""
