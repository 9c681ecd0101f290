-- Demo data for examples/local (run as ferry_admin). Starts over: drops ferry_demo first.
DROP DATABASE IF EXISTS ferry_demo;
CREATE DATABASE ferry_demo CHARACTER SET utf8mb4;
USE ferry_demo;
CREATE TABLE IF NOT EXISTS customers (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(200),
  card_number CHAR(16),
  created_at DATETIME(3) DEFAULT CURRENT_TIMESTAMP(3)
);
CREATE TABLE IF NOT EXISTS orders (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  customer_id INT NOT NULL,
  amount DECIMAL(10, 2) NOT NULL,
  status ENUM('new', 'paid', 'shipped') NOT NULL DEFAULT 'new'
);
INSERT INTO customers (name, email, card_number)
  SELECT CONCAT('customer ', seq), CONCAT('c', seq, '@example.com'), LPAD(seq, 16, '4')
  FROM seq_1_to_20000;
INSERT INTO orders (customer_id, amount, status)
  SELECT 1 + seq % 20000, (seq % 1000) / 10, ELT(1 + seq % 3, 'new', 'paid', 'shipped')
  FROM seq_1_to_50000;
