-- Shared lookup rows (not tenant-owned; a Citus reference table).
INSERT INTO crm.currencies (code, name, minor_units) VALUES
    ('USD', 'US dollar', 2), ('EUR', 'Euro', 2), ('GBP', 'Pound sterling', 2),
    ('CHF', 'Swiss franc', 2), ('AUD', 'Australian dollar', 2), ('CAD', 'Canadian dollar', 2),
    ('AED', 'UAE dirham', 2), ('JPY', 'Japanese yen', 0), ('INR', 'Indian rupee', 2),
    ('SGD', 'Singapore dollar', 2);
