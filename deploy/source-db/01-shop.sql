-- The demo shop of the docker-compose stack (MariaDB; runs once, when the volume is empty).
-- An event keeps it changing, so every scheduled sync has work (the server runs with
-- --event-scheduler=ON, see docker-compose.yml).
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4;
USE shop;

CREATE TABLE customers (
    id BIGINT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL,
    country CHAR(2) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    INDEX ix_customers_updated_at_id (updated_at, id)
);

CREATE TABLE products (
    id BIGINT PRIMARY KEY,
    sku VARCHAR(20) NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL,
    price DECIMAL(10, 2) NOT NULL,
    stock INT NOT NULL,
    updated_at DATETIME(6) NOT NULL
);

CREATE TABLE orders (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    customer_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity INT NOT NULL,
    amount DECIMAL(12, 2) NOT NULL,
    status VARCHAR(16) NOT NULL,
    note TEXT,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    INDEX ix_orders_updated_at_id (updated_at, id)
);

SET SESSION max_recursive_iterations = 100000;

INSERT INTO customers
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
SELECT i,
       CONCAT(ELT(1 + i % 8, 'Ada', 'Alan', 'Grace', 'Edsger', 'Barbara', 'Ken', 'Radia', 'Guido'),
              ' ', ELT(1 + i % 7, 'Lovelace', 'Turing', 'Hopper', 'Liskov', 'Ritchie', 'Wirth', 'Jones')),
       CONCAT('customer', i, '@example.com'),
       ELT(1 + i % 6, 'GB', 'US', 'DE', 'FR', 'JP', 'BR'),
       NOW(6) - INTERVAL (2000 - i) MINUTE,
       NOW(6) - INTERVAL (2000 - i) MINUTE
FROM n;

INSERT INTO products
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
SELECT i, CONCAT('SKU-', LPAD(i, 5, '0')),
       CONCAT(ELT(1 + i % 5, 'blue', 'compact', 'deluxe', 'recycled', 'wireless'), ' ',
              ELT(1 + i % 6, 'mug', 'lamp', 'kettle', 'chair', 'backpack', 'keyboard')),
       ROUND(3 + (i * 37 % 400) + (i % 100) / 100, 2), i * 13 % 500, NOW(6)
FROM n;

INSERT INTO orders (id, customer_id, product_id, quantity, amount, status, note, created_at, updated_at)
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
SELECT i, 1 + i * 7 % 2000, 1 + i % 200, 1 + i % 5, ROUND((1 + i % 5) * (3 + i % 400), 2),
       ELT(1 + i % 4, 'new', 'paid', 'shipped', 'delivered'),
       IF(i % 9 = 0, 'gift wrap', NULL),
       NOW(6) - INTERVAL (20000 - i) * 2 MINUTE,
       NOW(6) - INTERVAL (20000 - i) * 2 MINUTE
FROM n;

-- Shop activity every 2 seconds: new orders, orders moving on, a customer changing email.
DELIMITER //
CREATE EVENT shop_activity ON SCHEDULE EVERY 2 SECOND DO
BEGIN
    INSERT INTO orders (customer_id, product_id, quantity, amount, status, created_at, updated_at)
    SELECT 1 + FLOOR(RAND() * 2000), p.id, q.quantity, p.price * q.quantity, 'new', NOW(6), NOW(6)
    FROM products p JOIN (SELECT 1 + FLOOR(RAND() * 5) AS quantity) q
    WHERE p.id = 1 + FLOOR(RAND() * 200) LIMIT 1;
    UPDATE orders SET status = ELT(FIELD(status, 'new', 'paid', 'shipped') + 1,
                                   'new', 'paid', 'shipped', 'delivered'), updated_at = NOW(6)
    WHERE status <> 'delivered' ORDER BY RAND() LIMIT 2;
    UPDATE customers SET email = CONCAT('customer', id, '.', FLOOR(RAND() * 1000), '@example.net'),
                         updated_at = NOW(6)
    WHERE id = 1 + FLOOR(RAND() * 2000);
END //
DELIMITER ;
